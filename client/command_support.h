#ifndef PTQ_CLIENT_COMMAND_SUPPORT_H_
#define PTQ_CLIENT_COMMAND_SUPPORT_H_

#include <google/protobuf/message.h>
#include <signal.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "commands.h"
#include "quant_client.h"

namespace ptq::client {

// A message as JSON with the proto field names (the config's keys) and every field shown.
std::string ToJson(const google::protobuf::Message& message);

// Reports an RPC's error on stderr (with --json as one JSON document: {"error": {"command",
// "code", "message", "explanation", "exit_code"}}) and picks the exit code from who said no:
// the server (3, with its code and message) or nobody (1: unreachable, out of time).
ExitCode ReportRpcError(const std::string& what, const absl::Status& status, const GlobalOptions& options);

// Reports an error ptq-client found itself (a local file or config, a job in the wrong state, a
// download that does not verify, Ctrl-C) on stderr: "ptq-client: COMMAND: MESSAGE", or under
// --json one JSON document {"error": {"command", "message", "exit_code"}}. Returns `code`.
ExitCode ReportError(const std::string& command, const std::string& message, ExitCode code,
                     const GlobalOptions& options);

// Ctrl-C for the span of one long call: SIGINT sets interrupted() and runs `on_interrupt` on a
// thread of its own (nothing else is safe in a signal handler); the previous handler returns
// with the destructor. One at a time.
class InterruptScope {
 public:
  explicit InterruptScope(std::function<void()> on_interrupt);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  bool interrupted() const;

 private:
  struct sigaction previous_ = {};
  std::thread canceller_;
};

// Uploads a local TorchScript file, whose sha256 the caller computed, unless the server
// already holds those bytes. Progress goes to stderr on a terminal. INVALID_ARGUMENT (a local
// problem) when the file cannot be read.
absl::StatusOr<v1::Model> UploadIfMissing(QuantClient& client, const std::string& model_path,
                                          const std::string& sha256, const GlobalOptions& options);

// Follows a job with WatchJob until it ends, drawing progress on stderr (unless --json), and
// returns the final job. A server that goes away (restarts, a dropped connection) is watched
// again for up to 5 minutes. CANCELLED when interrupted by Ctrl-C (the job keeps running).
absl::StatusOr<v1::Job> FollowJob(QuantClient& client, const std::string& job_id, const GlobalOptions& options);

// The exit code for a job that ended: 0 SUCCEEDED, 4 FAILED or CANCELLED.
ExitCode ExitCodeOf(const v1::Job& job);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_COMMAND_SUPPORT_H_
