#include "job_config_file.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ptq::client {
namespace {

namespace fs = std::filesystem;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Where the seed's command-line flags live in our config, for a helpful unknown-key error.
const std::map<std::string, std::string>& SeedFlagSections() {
  static const auto* sections = new std::map<std::string, std::string>{
      {"quant_batch_num", "calibration"}, {"quant_batch_size", "calibration"}, {"data", "calibration.path"},
      {"activation_quantizer", "ptq"},     {"weight_quantizer", "ptq"},          {"upsample_bins", "ptq"},
      {"hist_percent", "ptq"},             {"fuse", "ptq"},                      {"fuse_list", "ptq"},
      {"skip_se_quant", "ptq"},            {"bins", "ptq"},                      {"model_path", "model.path"},
  };
  return *sections;
}

bool TypeMatches(const nlohmann::json& value, const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return value.is_string();
    case FieldDescriptor::CPPTYPE_BOOL:
      return value.is_boolean();
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return value.is_number_integer();
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return value.is_number();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return value.is_object();
    default:
      return false;
  }
}

const char* TypeName(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "a number";
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "an object";
    default:
      return "an integer";
  }
}

// Checks every key of `object` against `message` recursively; `prefix` is the key path so far.
absl::Status CheckKeys(const nlohmann::json& object, const Descriptor& message, const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    const std::string path = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
    const FieldDescriptor* field = message.FindFieldByName(key);
    if (field == nullptr) {
      std::string hint;
      auto seed = SeedFlagSections().find(key);
      if (prefix.empty() && seed != SeedFlagSections().end()) hint = absl::StrCat(" (it belongs under ", seed->second, ")");
      return absl::InvalidArgumentError(absl::StrCat(path, ": unknown key", hint));
    }
    if (field->is_repeated()) {
      if (!value.is_array()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be a list"));
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string element = absl::StrCat(path, "[", i, "]");
        if (!TypeMatches(value[i], *field)) {
          return absl::InvalidArgumentError(absl::StrCat(element, ": must be ", TypeName(*field)));
        }
        if (field->message_type() != nullptr) {
          if (absl::Status status = CheckKeys(value[i], *field->message_type(), element); !status.ok()) return status;
        }
      }
      continue;
    }
    if (!TypeMatches(value, *field)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": must be ", TypeName(*field), ", got ", value.dump()));
    }
    if (field->message_type() != nullptr) {
      if (absl::Status status = CheckKeys(value, *field->message_type(), path); !status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// The seed writes fuse_list as [["conv1", "bn1"], ...]; the proto has [{"layers": [...]}].
void NormalizeFuseList(nlohmann::json& document) {
  if (!document.contains("ptq") || !document["ptq"].is_object()) return;
  nlohmann::json& ptq = document["ptq"];
  if (!ptq.contains("fuse_list") || !ptq["fuse_list"].is_array()) return;
  for (nlohmann::json& group : ptq["fuse_list"]) {
    if (group.is_array()) group = nlohmann::json{{"layers", group}};
  }
}

std::string ResolveAgainst(const fs::path& folder, const std::string& path) {
  const fs::path relative(path);
  return (relative.is_absolute() ? relative : folder / relative).lexically_normal().string();
}

absl::Status TooLarge(const std::string& path, uintmax_t size) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", size, " bytes; a job config may have at most ", kMaxConfigBytes));
}

// The whole file, refused before reading when it is not a regular file or is larger than any
// job config could be.
absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (error || !fs::exists(status)) return absl::InvalidArgumentError(absl::StrCat(path, ": no such config file"));
  if (!fs::is_regular_file(status)) return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  const uintmax_t size = fs::file_size(path, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the config file: ", error.message()));
  if (size > kMaxConfigBytes) return TooLarge(path, size);
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the config file"));
  }
  return text;
}

}  // namespace

size_t JsonNestingDepth(absl::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

absl::StatusOr<LocalJobConfig> LoadJobConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) return text.status();
  return ParseJobConfig(*text, path);
}

absl::StatusOr<LocalJobConfig> ParseJobConfig(absl::string_view text, const std::string& path) {
  if (text.size() > kMaxConfigBytes) return TooLarge(path, text.size());
  if (const size_t depth = JsonNestingDepth(text); depth > kMaxConfigDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": nested ", depth, " levels deep; a job config needs at most ", kMaxConfigDepth));
  }
  nlohmann::json document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  if (!document.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": must be a JSON object"));
  NormalizeFuseList(document);
  if (absl::Status status = CheckKeys(document, *v1::JobConfig::descriptor(), ""); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  }
  LocalJobConfig local;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(document.dump(), &local.config, options);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.message().as_string()));

  const fs::path folder = fs::path(path).parent_path();
  v1::JobConfig& config = local.config;
  if (config.model().model_id().empty() && config.model().path().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": model.path (a local TorchScript file) or model.model_id is required"));
  }
  if (!config.model().path().empty()) {
    local.model_path = ResolveAgainst(folder, config.model().path());
    std::error_code error;
    if (!fs::is_regular_file(local.model_path, error)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": model.path: '", local.model_path, "' does not exist"));
    }
  }
  const std::string& source = config.calibration().source();
  if (source == "client" || source == "stream") {
    if (config.calibration().path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": calibration.path is required: ptq-client streams the ", source, " source from that local dataset"));
    }
    local.local_calibration_path = ResolveAgainst(folder, config.calibration().path());
  }
  return local;
}

}  // namespace ptq::client
