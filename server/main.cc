// ptq-server: the long-running PTQ service. Flags (or PTQ_* environment variables) configure
// it; SIGTERM or SIGINT stops it gracefully; SIGHUP reloads --auth-token-file.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "CLI/CLI.hpp"
#include "grpc/quant_server.h"
#include "job_store.h"
#include "listen_address.h"
#include "log_format.h"
#include "ptq/common/build_info.h"
#include "ptq/core/devices.h"
#include "spdlog/fmt/ranges.h"
#include "spdlog/spdlog.h"

namespace {

// --copy-jobs-from: both stores opened as a server of role all would, so neither may be in use.
int CopyJobs(const std::string& from_spec, const std::string& to_spec) {
  if (to_spec.empty()) {
    std::fprintf(stderr, "ptq-server: --copy-jobs-from needs --store, the store to copy into\n");
    return 2;
  }
  // Opening an SQLite path creates the file: a mistyped one would copy nothing, silently.
  constexpr char kSqlite[] = "sqlite:";
  if (from_spec.rfind(kSqlite, 0) == 0 && !std::filesystem::exists(from_spec.substr(sizeof(kSqlite) - 1))) {
    std::fprintf(stderr, "ptq-server: --copy-jobs-from: '%s' does not exist\n", from_spec.c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ptq::server::JobStore>> from = ptq::server::OpenJobStore(from_spec);
  absl::StatusOr<std::unique_ptr<ptq::server::JobStore>> to =
      from.ok() ? ptq::server::OpenJobStore(to_spec) : from.status();
  absl::StatusOr<int64_t> copied = to.ok() ? ptq::server::CopyJobs(**from, **to) : to.status();
  if (!copied.ok()) {
    std::fprintf(stderr, "ptq-server: cannot copy the jobs: %s\n", copied.status().ToString().c_str());
    return 1;
  }
  std::printf("copied %lld jobs\n", static_cast<long long>(*copied));
  return 0;
}

// SIGINT, SIGTERM and SIGHUP are turned into a byte on a pipe that main() waits on. A
// handler, not a blocked mask: libraries start threads before main() (OpenMP, LibTorch), and a
// process-wide signal may land on any of them.
int signal_pipe[2] = {-1, -1};

void OnSignal(int signal_number) {
  const char byte = static_cast<char>(signal_number);
  // Nothing else is async-signal-safe to do here; a full pipe means signals are already pending.
  (void)!write(signal_pipe[1], &byte, 1);
}

bool InstallSignalHandlers() {
  if (pipe(signal_pipe) != 0) return false;
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGINT, &action, nullptr) == 0 && sigaction(SIGTERM, &action, nullptr) == 0 &&
         sigaction(SIGHUP, &action, nullptr) == 0;
}

int WaitForSignal() {
  char byte = 0;
  while (read(signal_pipe[0], &byte, 1) != 1) {
    // EINTR: keep waiting.
  }
  return byte;
}

// Written once the server accepts calls, so that scripts and tests can wait for readiness and
// learn the port picked for --listen host:0: the gRPC address, then (with --metrics-listen)
// a line "metrics HOST:PORT". Renamed into place, never seen half-written.
bool WriteReadyFile(const std::string& path, const std::string& address, const std::string& metrics_address) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << address << "\n";
    if (!metrics_address.empty()) out << "metrics " << metrics_address << "\n";
    if (!out) return false;
  }
  return std::rename(temporary.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  ptq::server::ServerOptions options;
  int64_t max_upload_mb = options.max_upload_bytes >> 20;
  int64_t max_stream_mb = options.max_stream_bytes >> 20;
  double shutdown_grace_seconds = 30;
  std::string ready_file;
  std::string log_level = "info";
  std::string log_format = "text";

  CLI::App app{"ptq-server: post-training quantization service (gRPC)"};
  app.option_defaults()->always_capture_default();
  app.set_version_flag(
      "--version",
      [] {
        return fmt::format("ptq-server {} (commit {}; LibTorch {}, onednn {})", ptq::Version(), ptq::BuildCommit(),
                           ptq::core::LibTorchVersion(), ptq::core::OnednnVersion());
      },
      "print the version, the commit and the LibTorch and onednn versions, and exit");
  app.add_option("--listen", options.listen_address, "host:port to serve on (port 0: any free port)")
      ->envname("PTQ_LISTEN");
  app.add_option("--tls-cert", options.security.cert_file, "PEM certificate (chain) the server presents: TLS")
      ->envname("PTQ_TLS_CERT");
  app.add_option("--tls-key", options.security.key_file, "PEM private key of --tls-cert")->envname("PTQ_TLS_KEY");
  app.add_option("--tls-client-ca", options.security.client_ca_file,
                 "PEM CA certificates: clients must present a certificate one of them signed (mutual TLS)")
      ->envname("PTQ_TLS_CLIENT_CA");
  app.add_flag("--insecure", options.security.insecure, "serve plaintext, without TLS (say so explicitly)")
      ->envname("PTQ_INSECURE");
  app.add_option("--auth-token-file", options.security.auth_token_file,
                 "identities, one `TOKEN TENANT ROLE` (or `subject=CERT-SUBJECT TENANT ROLE`) per line; roles: "
                 "reader, submitter, admin; reloaded on SIGHUP. Without it every caller is admin")
      ->envname("PTQ_AUTH_TOKEN_FILE");
  app.add_flag("--reflection", options.reflection, "offer gRPC server reflection (lists services and messages)")
      ->envname("PTQ_REFLECTION");
  app.add_option("--metrics-listen", options.metrics_listen,
                 "host:port for Prometheus metrics (plain HTTP, GET /metrics; port 0: any free port); off by default")
      ->envname("PTQ_METRICS_LISTEN");
  app.add_option("--state-dir", options.state_dir, "folder for models, jobs and results")
      ->envname("PTQ_STATE_DIR");
  app.add_option("--store", options.store,
                 "where jobs are recorded: sqlite:PATH, or a postgresql:// URL (default: sqlite:STATE_DIR/jobs.sqlite)")
      ->envname("PTQ_STORE");
  app.add_option("--role", options.role,
                 "all: one server runs every RPC and the jobs; api: every RPC, no job runs; worker: runs the "
                 "store's jobs, serves health only (api and worker share a postgresql:// store and the state dir)")
      ->envname("PTQ_ROLE")
      ->check(CLI::IsMember({"all", "api", "worker"}));
  app.add_option("--lease-seconds", options.lease_seconds,
                 "a worker's hold on a job lasts this long unless renewed (another worker takes the job over "
                 "after it)")
      ->envname("PTQ_LEASE_SECONDS")
      ->check(CLI::Range(1, 3600));
  app.add_option("--data-root", options.data_root,
                 "folder under which server-side datasets are resolved")
      ->envname("PTQ_DATA_ROOT");
  app.add_option("--max-upload-mb", max_upload_mb, "largest model UploadModel accepts, in MiB")
      ->envname("PTQ_MAX_UPLOAD_MB")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--shutdown-grace-seconds", shutdown_grace_seconds,
                 "on SIGTERM, how long running jobs (then calls in flight) may take to finish; "
                 "jobs still running after it are re-queued at the next start")
      ->envname("PTQ_SHUTDOWN_GRACE_SECONDS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ready-file", ready_file,
                 "write the bound host:port to this file once serving");
  app.add_option("--device", options.device,
                 "auto: one worker per CUDA device LibTorch sees, else CPU workers; cpu; cuda")
      ->envname("PTQ_DEVICE")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--workers", options.workers, "CPU workers running jobs side by side")
      ->envname("PTQ_WORKERS")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", options.threads,
                 "LibTorch intra-op threads shared by the CPU workers; 0: one per core")
      ->envname("PTQ_THREADS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-queue", options.max_queue, "jobs waiting to run beyond which submissions are refused")
      ->envname("PTQ_MAX_QUEUE")
      ->check(CLI::PositiveNumber);
  app.add_option("--awaiting-data-ttl", options.awaiting_data_ttl_seconds,
                 "seconds a stream job may wait for its calibration data before it fails")
      ->envname("PTQ_AWAITING_DATA_TTL")
      ->check(CLI::Range(1, 30 * 24 * 3600));
  app.add_option("--stream-idle-timeout", options.stream_idle_timeout_seconds,
                 "seconds a calibration stream may send nothing before it is cancelled")
      ->envname("PTQ_STREAM_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 24 * 3600));
  app.add_option("--max-stream-mb", max_stream_mb,
                 "MiB of decoded calibration data all stream jobs together may hold in memory")
      ->envname("PTQ_MAX_STREAM_MB")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--retention-days", options.retention_days,
                 "delete ended jobs (record, results, log) this many days after they finished; 0: keep them")
      ->envname("PTQ_RETENTION_DAYS")
      ->check(CLI::Range(0.0, 36500.0));
  app.add_option("--max-state-gb", options.max_results_gb,
                 "while ended jobs' result directories hold more than this many GiB, delete the oldest; 0: no limit")
      ->envname("PTQ_MAX_STATE_GB")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--stall-timeout-seconds", options.stall_timeout_seconds,
                 "a worker whose job makes no progress (a batch, a layer, a stage) this long is wedged: the health "
                 "service 'liveness' turns NOT_SERVING, for a liveness probe to restart the server; 0: not watched")
      ->envname("PTQ_STALL_TIMEOUT_SECONDS")
      ->check(CLI::Range(0, 7 * 24 * 3600));
  app.add_option("--worker-nice", options.worker_nice,
                 "nice value of the threads running jobs, so RPCs are answered first when jobs fill every core")
      ->envname("PTQ_WORKER_NICE")
      ->check(CLI::Range(0, 19));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->envname("PTQ_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text, or json: one JSON object per line for log collectors")
      ->envname("PTQ_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  std::string copy_jobs_from;
  app.add_option("--copy-jobs-from", copy_jobs_from,
                 "copy every job of this store (sqlite:PATH) into --store, which must hold none, and exit: how a "
                 "single server's jobs move to the PostgreSQL store of the api and worker roles (stop the server "
                 "first; copy its state dir's models and results to the shared volume too)");
  CLI11_PARSE(app, argc, argv);
  if (!copy_jobs_from.empty()) return CopyJobs(copy_jobs_from, options.store);
  options.max_upload_bytes = max_upload_mb << 20;
  options.max_stream_bytes = max_stream_mb << 20;
  // Uploaded models, the job database and results are users' data: every file and folder the
  // server creates is its user's alone (0600 / 0700). Set once, before any thread starts.
  umask(S_IRWXG | S_IRWXO);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (log_format == "json") {
    ptq::server::UseJsonLogLines();
  } else {
    ptq::server::UseTextLogLines();
  }

  if (!InstallSignalHandlers()) {
    spdlog::error("cannot install SIGINT/SIGTERM/SIGHUP handlers");
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ptq::server::QuantServer>> server =
      ptq::server::QuantServer::Start(options);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  const char* transport = options.security.insecure                  ? "plaintext"
                          : options.security.client_ca_file.empty() ? "TLS"
                                                                     : "mutual TLS";
  const bool identities = !options.security.auth_token_file.empty();
  spdlog::info("ptq-server listening on {} ({}, {}; state dir '{}', data root '{}', max upload {} MiB, workers: {})",
               (*server)->bound_address(), transport,
               identities ? "identities from --auth-token-file" : "no identities: every caller is admin",
               options.state_dir, options.data_root, max_upload_mb, fmt::join((*server)->worker_devices(), ", "));
  if (options.security.insecure && !ptq::server::IsLoopbackOnly(options.listen_address)) {
    spdlog::warn("--listen {} with --insecure: plaintext beyond this machine; whoever reaches the port {} "
                 "(use --tls-cert and --tls-key)",
                 options.listen_address,
                 identities ? "reads the traffic, bearer tokens included, and can replay them"
                            : "reads the traffic and can upload, submit, download and cancel");
  }
  if (!(*server)->metrics_address().empty()) {
    spdlog::info("metrics on http://{}/metrics", (*server)->metrics_address());
    if (!ptq::server::IsLoopbackOnly(options.metrics_listen)) {
      spdlog::warn("--metrics-listen {}: the metrics endpoint has no TLS and no authentication; whoever reaches "
                   "the port reads job counts and call rates (never ids, tenants or tokens)",
                   options.metrics_listen);
    }
  }
  if (!ready_file.empty() &&
      !WriteReadyFile(ready_file, (*server)->bound_address(), (*server)->metrics_address())) {
    spdlog::error("cannot write --ready-file '{}'", ready_file);
    return 1;
  }

  int signal_number = WaitForSignal();
  for (; signal_number == SIGHUP; signal_number = WaitForSignal()) {
    if (absl::Status reloaded = (*server)->ReloadIdentities(); !reloaded.ok()) {
      spdlog::error("SIGHUP: kept the identities already loaded: {}", std::string(reloaded.message()));
    }
  }
  spdlog::info("received {}, shutting down (grace {} s)", strsignal(signal_number),
               shutdown_grace_seconds);
  (*server)->Shutdown(std::chrono::milliseconds(static_cast<int64_t>(shutdown_grace_seconds * 1000)));
  spdlog::info("ptq-server stopped");
  return 0;
}
