#include "command_support.h"

#include <google/protobuf/util/json_util.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "job_display.h"
#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"

namespace ptq::client {
namespace {

// How long a watch keeps trying to reach a server that went away before it gives up.
constexpr std::chrono::minutes kResumeWindow{5};

// InterruptScope's signal handler sets the flag and writes to a pipe, which its thread reads.
int interrupt_pipe[2] = {-1, -1};
std::atomic<bool> interrupt_seen{false};

void OnInterrupt(int) {
  interrupt_seen.store(true);
  const char byte = 1;
  (void)!write(interrupt_pipe[1], &byte, 1);
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print_options;
  print_options.preserve_proto_field_names = true;
  print_options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print_options);
  return json;
}

ExitCode ReportError(const std::string& command, const std::string& message, ExitCode code,
                     const GlobalOptions& options) {
  if (options.json) {
    const nlohmann::json error = {
        {"error", {{"command", command}, {"message", message}, {"exit_code", static_cast<int>(code)}}}};
    std::cerr << error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "ptq-client: " << command << ": " << message << "\n";
  }
  return code;
}

InterruptScope::InterruptScope(std::function<void()> on_interrupt) {
  if (interrupt_pipe[0] < 0 && pipe(interrupt_pipe) != 0) {
    interrupt_pipe[0] = interrupt_pipe[1] = -1;
    return;  // Ctrl-C then ends the process as it would without a scope
  }
  interrupt_seen.store(false);
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the process at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous_);
  canceller_ = std::thread([on_interrupt = std::move(on_interrupt)] {
    char byte = 0;
    while (read(interrupt_pipe[0], &byte, 1) != 1) {
    }
    if (byte == 1) on_interrupt();
  });
}

InterruptScope::~InterruptScope() {
  if (!canceller_.joinable()) return;
  const char stop = 0;  // wakes the thread, unless a Ctrl-C did
  (void)!write(interrupt_pipe[1], &stop, 1);
  canceller_.join();
  sigaction(SIGINT, &previous_, nullptr);
  // A Ctrl-C's byte and the stop byte may both be there: the next scope starts on an empty pipe.
  const int flags = fcntl(interrupt_pipe[0], F_GETFL);
  fcntl(interrupt_pipe[0], F_SETFL, flags | O_NONBLOCK);
  char byte = 0;
  while (read(interrupt_pipe[0], &byte, 1) == 1) {
  }
  fcntl(interrupt_pipe[0], F_SETFL, flags);
}

bool InterruptScope::interrupted() const { return interrupt_seen.load(); }

ExitCode ReportRpcError(const std::string& what, const absl::Status& status, const GlobalOptions& options) {
  std::string explained;
  ExitCode code = kExitServerRefused;
  if (absl::IsDeadlineExceeded(status)) {
    explained = absl::StrCat("server ", options.server, " did not answer within --timeout ",
                             std::chrono::duration<double>(options.timeout).count(), " s");
    code = kExitError;
  } else if (OriginOf(status) == ErrorOrigin::kUnreachable) {
    explained = absl::StrCat("cannot reach server ", options.server);
    code = kExitError;
  } else {
    explained = "server said";
  }
  if (options.json) {
    // Scripts that read --json output get the error as a document too (on stderr).
    const nlohmann::json error = {{"error",
                                   {{"command", what},
                                    {"code", absl::StatusCodeToString(status.code())},
                                    {"message", std::string(status.message())},
                                    {"explanation", explained},
                                    {"exit_code", static_cast<int>(code)}}}};
    std::cerr << error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (code == kExitServerRefused) {
    std::cerr << "ptq-client: " << what << ": server said " << status.ToString() << "\n";
  } else {
    std::cerr << "ptq-client: " << what << ": " << explained << " (" << status.ToString() << ")\n";
  }
  return code;
}

absl::StatusOr<v1::Model> UploadIfMissing(QuantClient& client, const std::string& model_path,
                                          const std::string& sha256, const GlobalOptions& options) {
  std::error_code error;
  const int64_t size_bytes = static_cast<int64_t>(std::filesystem::file_size(model_path, error));
  if (error) return absl::InvalidArgumentError(absl::StrCat("cannot read '", model_path, "'"));
  // Content addressed: if the server has these bytes already, there is nothing to send.
  absl::StatusOr<v1::Model> existing = client.GetModel(sha256);
  if (existing.ok()) {
    existing->set_already_present(true);
    return existing;
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  const bool show_progress = isatty(STDERR_FILENO) && !options.json;
  absl::StatusOr<v1::Model> model = client.UploadModel(model_path, size_bytes, sha256, [&](int64_t sent) {
    if (show_progress) {
      std::cerr << absl::StrFormat("\ruploading %s: %3d%%", model_path, static_cast<int>(100 * sent / size_bytes));
    }
  });
  if (show_progress) std::cerr << "\n";
  return model;
}

absl::StatusOr<v1::Job> FollowJob(QuantClient& client, const std::string& job_id, const GlobalOptions& options) {
  InterruptScope interrupt([&client] { client.CancelStreamingCall(); });
  ProgressLine progress(std::cerr, isatty(STDERR_FILENO) != 0);
  v1::Job last;
  absl::Status watched;
  // A server that restarts or a connection that drops ends the watch with UNAVAILABLE (or, for
  // a server stopping, CANCELLED): the job lives on the server, so it is watched again, with
  // backoff, for up to kResumeWindow.
  std::optional<std::chrono::steady_clock::time_point> lost_since;
  auto pause = std::chrono::milliseconds(250);
  while (true) {
    watched = client.WatchJob(job_id, [&](const v1::Job& job) {
      last = job;
      lost_since.reset();
      if (!options.json) progress.Show(job);
    });
    const bool lost = absl::IsUnavailable(watched) || (absl::IsCancelled(watched) && !interrupt.interrupted());
    if (!lost || interrupt.interrupted()) break;
    const auto now = std::chrono::steady_clock::now();
    if (!lost_since.has_value()) {
      lost_since = now;
      pause = std::chrono::milliseconds(250);
      std::cerr << "ptq-client: lost the server (" << watched.message() << "); watching job " << job_id
                << " again as soon as it answers\n";
    }
    if (now - *lost_since > kResumeWindow) break;
    for (auto slept = std::chrono::milliseconds(0); slept < pause && !interrupt.interrupted();
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pause = std::min(pause * 2, std::chrono::milliseconds(4000));
  }
  progress.Done();
  if (interrupt.interrupted()) {
    return absl::CancelledError(absl::StrCat("interrupted; job ", job_id,
                                             " keeps running on the server. Follow it again with: ptq-client watch ",
                                             job_id));
  }
  if (!watched.ok()) return watched;
  return last;
}

ExitCode ExitCodeOf(const v1::Job& job) {
  return job.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitJobFailed;
}

}  // namespace ptq::client
