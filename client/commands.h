#ifndef PTQ_CLIENT_COMMANDS_H_
#define PTQ_CLIENT_COMMANDS_H_

#include <chrono>
#include <string>

#include "exit_codes.h"

namespace ptq::client {

// Options every command shares.
struct GlobalOptions {
  std::string server = "localhost:50051";
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  bool json = false;  // one JSON document on stdout instead of human-readable text
};

// Each command prints its result (stdout) or its error (stderr) and returns the exit code.
ExitCode RunHealth(const GlobalOptions& options);
ExitCode RunUpload(const GlobalOptions& options, const std::string& model_path);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_COMMANDS_H_
