#ifndef PTQ_CLIENT_COMMANDS_H_
#define PTQ_CLIENT_COMMANDS_H_

#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "exit_codes.h"

namespace ptq::client {

// Options every command shares.
struct GlobalOptions {
  std::string server = "localhost:50051";
  // Plaintext unless TLS was asked for (ChannelCredentialsFor).
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  std::string token;  // bearer token for servers with --auth-token-file; empty: none
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  bool json = false;  // one JSON document on stdout instead of human-readable text
};

struct SubmitOptions {
  std::string config_path;
  bool wait = false;
  std::string idempotency_key;
};

struct EvaluateOptions {
  std::string job_id;
  std::string data;  // dataset under the server's data root
  std::string format;
  int limit = 0;
  std::vector<std::string> variants;
};

// Each command prints its result (stdout) or its error (stderr) and returns the exit code.
// `service`: "" for the whole server (ready to serve), "liveness" for its workers making
// progress, or a service name such as "ptq.v1.QuantService".
ExitCode RunHealth(const GlobalOptions& options, const std::string& service);
ExitCode RunUpload(const GlobalOptions& options, const std::string& model_path);
ExitCode RunSubmit(const GlobalOptions& options, const SubmitOptions& submit);
ExitCode RunStatus(const GlobalOptions& options, const std::string& job_id);
ExitCode RunWatch(const GlobalOptions& options, const std::string& job_id);
ExitCode RunList(const GlobalOptions& options, const std::vector<std::string>& states, int limit);
ExitCode RunCancel(const GlobalOptions& options, const std::string& job_id);
// Deletes an ended job: its record, result directory and log.
ExitCode RunDelete(const GlobalOptions& options, const std::string& job_id);
// Lists the models the caller's tenant uploaded, newest first.
ExitCode RunModels(const GlobalOptions& options);
ExitCode RunDeleteModel(const GlobalOptions& options, const std::string& model_id);
// Prints the job's own log lines (state changes, warnings, its failure), oldest first.
ExitCode RunLogs(const GlobalOptions& options, const std::string& job_id);
ExitCode RunEvaluate(const GlobalOptions& options, const EvaluateOptions& evaluate);
ExitCode RunDownload(const GlobalOptions& options, const std::string& job_id, const std::string& out_dir);
// Prints a SUCCEEDED job's report.json: accuracy, held-out score, budget, layer sensitivity.
ExitCode RunReport(const GlobalOptions& options, const std::string& job_id);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_COMMANDS_H_
