// ptq-client: command line for ptq-server. Thin by design: no LibTorch, no OpenCV.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "commands.h"

int main(int argc, char** argv) {
  using ptq::client::ExitCode;
  ptq::client::GlobalOptions options;
  double timeout_seconds = 120;
  std::string model_path;

  CLI::App app{"ptq-client: talk to a ptq-server (post-training quantization service)"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `upload m.pt --json`
  app.add_option("--server", options.server, "server host:port")
      ->envname("PTQ_SERVER")
      ->capture_default_str();
  app.add_option("--timeout", timeout_seconds, "seconds each call may take")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", options.json, "print one JSON document instead of text");

  CLI::App* health = app.add_subcommand("health", "check that the server is serving");
  CLI::App* upload = app.add_subcommand("upload", "upload a TorchScript model, print its id");
  upload->add_option("model", model_path, "TorchScript file (.pt)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? ptq::client::kExitOk : ptq::client::kExitUsage;
  }
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));

  if (health->parsed()) return ptq::client::RunHealth(options);
  if (upload->parsed()) return ptq::client::RunUpload(options, model_path);
  return ptq::client::kExitUsage;
}
