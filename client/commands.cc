#include "commands.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "quant_client.h"

namespace ptq::client {
namespace {

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.preserve_proto_field_names = true;
  print_options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print_options);
  return json;
}

// Reports an RPC's error on stderr and picks the exit code from who said no.
ExitCode ReportRpcError(const std::string& what, const absl::Status& status,
                        const GlobalOptions& options) {
  if (OriginOf(status) == ErrorOrigin::kUnreachable) {
    std::cerr << "ptq-client: " << what << ": cannot reach server " << options.server << " ("
              << status.ToString() << ")\n";
    return kExitError;
  }
  std::cerr << "ptq-client: " << what << ": server said " << status.ToString() << "\n";
  return kExitServerRefused;
}

void PrintModel(const v1::Model& model, const GlobalOptions& options) {
  if (options.json) {
    std::cout << ToJson(model) << "\n";
    return;
  }
  std::cout << "model_id:   " << model.model_id() << "\n"
            << "file:       " << model.filename() << " (" << model.size_bytes() << " bytes)\n"
            << "parameters: " << model.parameter_count() << "\n"
            << "forward:    " << model.forward_schema() << "\n"
            << "status:     " << (model.already_present() ? "already on the server" : "uploaded")
            << "\n";
}

}  // namespace

ExitCode RunHealth(const GlobalOptions& options) {
  QuantClient client(options.server, options.timeout);
  absl::StatusOr<std::string> health = client.CheckHealth("");
  if (!health.ok()) return ReportRpcError("health", health.status(), options);
  if (options.json) {
    std::cout << nlohmann::json{{"server", options.server}, {"status", *health}}.dump() << "\n";
  } else {
    std::cout << options.server << ": " << *health << "\n";
  }
  return *health == "SERVING" ? kExitOk : kExitError;
}

ExitCode RunUpload(const GlobalOptions& options, const std::string& model_path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(model_path, error)) {
    std::cerr << "ptq-client: upload: model file '" << model_path << "' does not exist\n";
    return kExitUsage;
  }
  const int64_t size_bytes = static_cast<int64_t>(std::filesystem::file_size(model_path, error));
  absl::StatusOr<std::string> sha256 = Sha256OfFile(model_path);
  if (!sha256.ok() || error) {
    std::cerr << "ptq-client: upload: cannot read '" << model_path << "'\n";
    return kExitError;
  }

  QuantClient client(options.server, options.timeout);
  // Content addressed: if the server has these bytes already, there is nothing to send.
  absl::StatusOr<v1::Model> existing = client.GetModel(*sha256);
  if (existing.ok()) {
    existing->set_already_present(true);
    PrintModel(*existing, options);
    return kExitOk;
  }
  if (!absl::IsNotFound(existing.status())) {
    return ReportRpcError("upload", existing.status(), options);
  }

  const bool show_progress = isatty(STDERR_FILENO) && !options.json;
  absl::StatusOr<v1::Model> model =
      client.UploadModel(model_path, size_bytes, *sha256, [&](int64_t sent) {
        if (show_progress) {
          std::cerr << absl::StrFormat("\ruploading %s: %3d%%", model_path,
                                       static_cast<int>(100 * sent / size_bytes));
        }
      });
  if (show_progress) std::cerr << "\n";
  if (!model.ok()) return ReportRpcError("upload", model.status(), options);
  PrintModel(*model, options);
  return kExitOk;
}

}  // namespace ptq::client
