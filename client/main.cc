// ptq-client: command line for ptq-server. Thin by design: no LibTorch, no OpenCV.
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "channel_credentials.h"
#include "command_support.h"
#include "commands.h"
#include "ptq/common/build_info.h"

int main(int argc, char** argv) {
  using ptq::client::ExitCode;
  ptq::client::GlobalOptions options;
  double timeout_seconds = 120;
  std::string model_path, job_id, out_dir;
  ptq::client::SubmitOptions submit_options;
  ptq::client::EvaluateOptions evaluate_options;
  std::vector<std::string> states;
  int list_limit = 50;

  CLI::App app{"ptq-client: talk to a ptq-server (post-training quantization service)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ptq-client ") + std::string(ptq::Version()) + " (commit " +
                                        std::string(ptq::BuildCommit()) + ")");
  app.footer(
      "Exit codes:\n"
      "  0  success\n"
      "  1  any other error: server unreachable, call timed out, local file unreadable, ...\n"
      "  2  bad command line or job config (the message names the option, key or file)\n"
      "  3  the server refused the call (its status code and message are printed)\n"
      "  4  the job FAILED or was CANCELLED (submit --wait, watch); download, report: the job has not SUCCEEDED\n"
      "  130  interrupted (Ctrl-C): a job being followed keeps running; one whose data was streaming is cancelled");
  app.fallthrough();  // global options may follow the subcommand: `upload m.pt --json`
  app.add_option("--server", options.server, "server host:port")->envname("PTQ_SERVER")->capture_default_str();
  app.add_option("--timeout", timeout_seconds, "seconds each call may take; uploads get a second more per MiB; streaming calibration data, watch and "
                 "evaluate have no limit")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", options.json, "print one JSON document instead of text");
  ptq::client::ClientTls tls;
  app.add_option("--tls-ca", tls.ca_file, "PEM CA that signed the server's certificate (TLS; default: system roots)")
      ->envname("PTQ_TLS_CA");
  app.add_option("--tls-cert", tls.cert_file, "PEM client certificate, for servers that require one (mutual TLS)")
      ->envname("PTQ_TLS_CERT");
  app.add_option("--tls-key", tls.key_file, "PEM private key of --tls-cert")->envname("PTQ_TLS_KEY");
  app.add_option("--token", options.token, "bearer token, for servers with --auth-token-file (prefer PTQ_TOKEN: "
                 "command lines are visible to other users)")
      ->envname("PTQ_TOKEN");

  CLI::App* health = app.add_subcommand("health", "check that the server is serving; exit 0 only if it is");
  std::string health_service;
  health->add_option("--service", health_service,
                     "what to check: the whole server (default), 'liveness' (no worker is wedged: for liveness "
                     "probes), or a service name");
  CLI::App* upload = app.add_subcommand("upload", "upload a TorchScript model, print its id");
  upload->add_option("model", model_path, "TorchScript file (.pt)")->required();
  CLI::App* submit = app.add_subcommand("submit", "submit a quantization job from a JSON config");
  submit->add_option("--config", submit_options.config_path, "job config (JSON), e.g. deploy/examples/mnv3.json")
      ->required();
  submit->add_flag("--wait", submit_options.wait,
                   "follow the job to its end, print the fp32 vs int8 table; exit 0 only if it SUCCEEDED");
  submit->add_option("--idempotency-key", submit_options.idempotency_key,
                     "submitting again with the same key returns the same job");
  CLI::App* status = app.add_subcommand("status", "show a job");
  status->add_option("job", job_id, "job id")->required();
  CLI::App* watch = app.add_subcommand("watch", "follow a job until it ends; exit 0 only if it SUCCEEDED");
  watch->add_option("job", job_id, "job id")->required();
  CLI::App* list = app.add_subcommand("list", "list jobs, newest first");
  list->add_option("--state", states, "only jobs in these states (queued, calibrating, succeeded, ...)");
  list->add_option("--limit", list_limit, "at most this many jobs")->check(CLI::PositiveNumber)->capture_default_str();
  CLI::App* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("job", job_id, "job id")->required();
  CLI::App* delete_job = app.add_subcommand("delete", "delete an ended job: its record, result directory and log");
  delete_job->add_option("job", job_id, "job id")->required();
  CLI::App* models = app.add_subcommand("models", "list the models your tenant uploaded, newest first");
  CLI::App* delete_model = app.add_subcommand(
      "delete-model", "delete an uploaded model (refused while a job that has not ended uses it)");
  delete_model->add_option("model", model_path, "model id (sha256)")->required();
  CLI::App* logs = app.add_subcommand("logs", "print a job's own log: submission, state changes, warnings, failure");
  logs->add_option("job", job_id, "job id")->required();
  CLI::App* evaluate = app.add_subcommand("evaluate", "evaluate a finished job's models on a server-side dataset");
  evaluate->add_option("job", evaluate_options.job_id, "job id")->required();
  evaluate->add_option("--data", evaluate_options.data, "dataset under the server's --data-root")->required();
  evaluate->add_option("--limit", evaluate_options.limit, "at most this many images")->check(CLI::NonNegativeNumber);
  evaluate->add_option("--format", evaluate_options.format, "imagenet or idx (default: detected)");
  evaluate->add_option("--variants", evaluate_options.variants, "fp32, int8_simulated, int8 (default: all available)");
  CLI::App* download = app.add_subcommand("download", "download a job's result directory, checking every sha256");
  download->add_option("job", job_id, "job id")->required();
  download->add_option("--out", out_dir, "folder to write the files into")->required();
  CLI::App* report = app.add_subcommand(
      "report", "print a finished job's report: accuracy, held-out score, accuracy budget, layer sensitivity");
  report->add_option("job", job_id, "job id")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the error
    return code == 0 ? ptq::client::kExitOk : ptq::client::kExitUsage;
  }
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = ptq::client::ChannelCredentialsFor(tls);
  if (!credentials.ok()) {
    const std::string command = app.get_subcommands().empty() ? "ptq-client" : app.get_subcommands().front()->get_name();
    return ptq::client::ReportError(command, std::string(credentials.status().message()), ptq::client::kExitUsage,
                                    options);
  }
  options.credentials = *std::move(credentials);

  if (health->parsed()) return ptq::client::RunHealth(options, health_service);
  if (upload->parsed()) return ptq::client::RunUpload(options, model_path);
  if (submit->parsed()) return ptq::client::RunSubmit(options, submit_options);
  if (status->parsed()) return ptq::client::RunStatus(options, job_id);
  if (watch->parsed()) return ptq::client::RunWatch(options, job_id);
  if (list->parsed()) return ptq::client::RunList(options, states, list_limit);
  if (cancel->parsed()) return ptq::client::RunCancel(options, job_id);
  if (delete_job->parsed()) return ptq::client::RunDelete(options, job_id);
  if (models->parsed()) return ptq::client::RunModels(options);
  if (delete_model->parsed()) return ptq::client::RunDeleteModel(options, model_path);
  if (logs->parsed()) return ptq::client::RunLogs(options, job_id);
  if (evaluate->parsed()) return ptq::client::RunEvaluate(options, evaluate_options);
  if (download->parsed()) return ptq::client::RunDownload(options, job_id, out_dir);
  if (report->parsed()) return ptq::client::RunReport(options, job_id);
  return ptq::client::kExitUsage;
}
