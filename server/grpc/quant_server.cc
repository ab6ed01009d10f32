#include "grpc/quant_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpc/audit_log.h"
#include "grpc/client_visible_status.h"
#include "grpc/rpc_metrics.h"
#include "grpc/transport_security.h"
#include "metrics/metered_job_store.h"
#include "ptq/common/build_info.h"
#include "ptq/core/devices.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

// "127.0.0.1:50051" with the port replaced by `port`.
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  return absl::StrCat(address.substr(0, colon), ":", port);
}

// Linking gRPC's reflection library registers its plugin with every ServerBuilder (a static
// initializer); this option takes it out again unless --reflection asked for it.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return dynamic_cast<grpc::reflection::ProtoServerReflectionPlugin*>(
                                               plugin.get()) != nullptr;
                                  }),
                   plugins->end());
  }
};

// One entry per worker: every CUDA device for "auto" and "cuda" when LibTorch sees one,
// else `workers` CPU workers.
absl::StatusOr<std::vector<std::string>> WorkerDevices(const ServerOptions& options) {
  if (options.device != "auto" && options.device != "cpu" && options.device != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat("--device must be auto, cpu or cuda, got '", options.device, "'"));
  }
  if (options.workers < 1) return absl::InvalidArgumentError("--workers must be at least 1");
  const int cuda_devices = options.device == "cpu" ? 0 : core::CudaDeviceCount();
  if (options.device == "cuda" && cuda_devices == 0) {
    return absl::FailedPreconditionError("--device cuda: LibTorch sees no CUDA device (Debian's LibTorch is CPU-only)");
  }
  std::vector<std::string> devices;
  for (int i = 0; i < cuda_devices; ++i) devices.push_back(absl::StrCat("cuda:", i));
  if (devices.empty()) devices.assign(options.workers, "cpu");
  return devices;
}

// What a server of the worker role answers to every call but health's (which also gives its
// gRPC server the callback queue it needs to serve health at all).
class WorkerRoleFront final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    class Refusal final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Refusal(const std::string& method) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            absl::StrCat(method, ": this ptq-server has --role worker: it runs jobs and serves "
                                                 "health only; call a server of role api")));
      }
      void OnDone() override { delete this; }
    };
    return new Refusal(context->method());
  }
};

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "unknown-host";
  return host;
}

// Names this process in the leases it holds: host, pid and a random part (a pid comes again
// after a restart, in a container always).
std::string WorkerOwnerName() {
  std::random_device random;
  return absl::StrFormat("%s:%d:%08x", HostName(), static_cast<int>(getpid()), random());
}

// A state directory whose results folder holds jobs' result directories had a job database:
// starting empty without it would orphan them silently, so a lost or emptied database stops
// the start instead.
absl::Status CheckJobDatabasePresent(const std::filesystem::path& state_dir) {
  const std::filesystem::path database = state_dir / "jobs.sqlite";
  std::error_code error;
  const bool missing = !std::filesystem::exists(database, error);
  if (!missing && std::filesystem::file_size(database, error) > 0) return absl::OkStatus();
  int64_t result_directories = 0;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir / "results", error)) {
    if (entry.is_directory(error)) ++result_directories;
  }
  if (result_directories == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the job database '", database.string(), "' is ", missing ? "missing" : "empty", ", but '",
      (state_dir / "results").string(), "' holds ", result_directories,
      " result directories: restore the database, or move the results folder away to start without those jobs"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<QuantServer>> QuantServer::Start(const ServerOptions& options) {
  // Before anything touches LibTorch: onednn fixes its kernels' instruction set at first use.
  const std::string onednn_isa = core::CapOnednnBelowAmx();
  spdlog::info("onednn instruction set: {}", onednn_isa);
  if (options.role != "all" && options.role != "api" && options.role != "worker") {
    return absl::InvalidArgumentError(absl::StrCat("--role must be all, api or worker, got '", options.role, "'"));
  }
  const bool shares_store = options.role != "all";
  if (shares_store && options.store.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--role ", options.role,
                                                   " shares a PostgreSQL job store: give --store postgresql://..."));
  }
  if (options.lease_seconds < 1 || options.lease_seconds > 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lease-seconds must be in [1, 3600], got ", options.lease_seconds));
  }
  if (options.listen_address.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen must be host:port, got '", options.listen_address, "'"));
  }
  if (!options.data_root.empty() && !std::filesystem::is_directory(options.data_root)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-root '", options.data_root, "' is not a directory"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentialsFor(options.security);
  if (!credentials.ok()) return credentials.status();
  auto server = std::unique_ptr<QuantServer>(new QuantServer());
  server->metrics_ = std::make_unique<ServiceMetrics>(BuildInfo{std::string(Version()), std::string(BuildCommit()),
                                                                core::LibTorchVersion(), core::OnednnVersion(),
                                                                onednn_isa});
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint = MetricsHttpEndpoint::Start(
        options.metrics_listen, [metrics = server->metrics_.get()] { return metrics->TextExposition(); });
    if (!endpoint.ok()) return endpoint.status();
    server->metrics_endpoint_ = *std::move(endpoint);
    server->metrics_address_ = WithPort(options.metrics_listen, server->metrics_endpoint_->port());
  }
  absl::StatusOr<std::unique_ptr<CallAuthenticator>> authenticator =
      CallAuthenticator::Create(options.security.auth_token_file);
  if (!authenticator.ok()) return authenticator.status();
  server->authenticator_ = *std::move(authenticator);
  // Servers of the api and worker roles share the state directory: each host's server of a
  // role stages its own uploads.
  absl::StatusOr<std::unique_ptr<ModelStore>> models =
      ModelStore::Create(options.state_dir, options.max_upload_bytes,
                         shares_store ? absl::StrCat("models-", options.role, "-", HostName()) : "models");
  if (!models.ok()) return models.status();
  server->models_ = *std::move(models);
  // A state folder an earlier version created 0755: its contents become the user's alone.
  std::error_code private_error;
  std::filesystem::permissions(options.state_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, private_error);
  if (private_error) {
    spdlog::warn("cannot make --state-dir private (0700): {}", private_error.message());
  }
  absl::StatusOr<std::vector<std::string>> devices = WorkerDevices(options);
  if (!devices.ok()) return devices.status();
  server->worker_devices_ = *devices;
  core::SetIntraOpThreads(options.threads > 0 ? options.threads
                                              : static_cast<int>(std::thread::hardware_concurrency()));
  const std::filesystem::path state_dir(options.state_dir);
  const std::string store = options.store.empty() ? absl::StrCat("sqlite:", (state_dir / "jobs.sqlite").string())
                                                  : options.store;
  if (options.store.empty()) {
    if (absl::Status present = CheckJobDatabasePresent(state_dir); !present.ok()) return present;
  }
  absl::StatusOr<std::unique_ptr<JobStore>> job_store =
      OpenJobStore(store, shares_store ? StoreAccess::kShared : StoreAccess::kExclusive);
  if (!job_store.ok()) return job_store.status();
  server->job_store_ = std::make_unique<MeteredJobStore>(*std::move(job_store), server->metrics_.get());
  // Before the job manager recovers jobs, so that its lines about them reach their logs too.
  const ClientVisiblePaths visible_paths(options.state_dir, options.data_root);
  server->job_logs_ = std::make_unique<JobLogs>(state_dir / "logs", visible_paths);
  server->job_log_sink_ = server->job_logs_->Sink();
  spdlog::default_logger()->sinks().push_back(server->job_log_sink_);
  if (options.role == "worker") {
    JobWorkerOptions worker_options;
    worker_options.results_dir = state_dir / "results";
    worker_options.streams_dir = state_dir / "streams";
    worker_options.data_root = options.data_root;
    worker_options.worker_devices = *devices;
    worker_options.worker_nice = options.worker_nice;
    worker_options.owner = WorkerOwnerName();
    worker_options.lease = std::chrono::seconds(options.lease_seconds);
    absl::StatusOr<std::unique_ptr<JobWorker>> worker = JobWorker::Start(
        worker_options, server->job_store_.get(), server->models_.get(), server->metrics_.get());
    if (!worker.ok()) return worker.status();
    server->job_worker_ = *std::move(worker);
    spdlog::info("worker {} takes jobs from the store", worker_options.owner);
  } else {
    JobManagerOptions job_options;
    job_options.results_dir = state_dir / "results";
    job_options.streams_dir = state_dir / "streams";
    job_options.data_root = options.data_root;
    job_options.worker_devices = *devices;
    job_options.max_queue = options.max_queue;
    job_options.awaiting_data_ttl = std::chrono::seconds(options.awaiting_data_ttl_seconds);
    job_options.stream_idle_timeout = std::chrono::seconds(options.stream_idle_timeout_seconds);
    job_options.max_stream_bytes = options.max_stream_bytes;
    job_options.worker_nice = options.worker_nice;
    job_options.retention_age = std::chrono::seconds(static_cast<int64_t>(options.retention_days * 24 * 3600));
    job_options.max_results_bytes = static_cast<int64_t>(options.max_results_gb * (int64_t{1} << 30));
    job_options.run_jobs = options.role == "all";
    absl::StatusOr<std::unique_ptr<JobManager>> jobs =
        JobManager::Start(job_options, server->job_store_.get(), server->models_.get(), server->metrics_.get(),
                          server->job_logs_.get());
    if (!jobs.ok()) return jobs.status();
    server->jobs_ = *std::move(jobs);
    server->metrics_->ReadWorkAtScrape([jobs = server->jobs_.get()] { return jobs->Work(); });
    server->blocking_pool_ = std::make_unique<TaskPool>(options.blocking_threads);
    server->stream_decode_pool_ = std::make_unique<TaskPool>(options.stream_decode_threads);
    server->service_ = std::make_unique<QuantService>(server->authenticator_.get(), server->models_.get(),
                                                      server->jobs_.get(), server->job_logs_.get(),
                                                      job_options.results_dir, server->blocking_pool_.get(),
                                                      server->stream_decode_pool_.get());
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (options.reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  } else {
    builder.SetOption(std::make_unique<WithoutReflection>());
  }
  int bound_port = 0;
  builder.AddListeningPort(options.listen_address, *credentials, &bound_port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // Keepalive: pings find clients that vanished without closing (their watch reactors are
  // freed), and clients' own pings every 30 s, even between calls, are welcome.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 20000);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RpcMetricsFactory>(server->metrics_.get()));
  interceptors.push_back(std::make_unique<AuditLogFactory>(server->authenticator_.get()));
  interceptors.push_back(
      std::make_unique<ClientVisibleStatusFactory>(visible_paths));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (server->service_ != nullptr) {
    builder.RegisterService(server->service_.get());
  } else {
    server->worker_front_ = std::make_unique<WorkerRoleFront>();
    builder.RegisterCallbackGenericService(server->worker_front_.get());
  }
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on '", options.listen_address, "'"));
  }
  server->bound_address_ = WithPort(options.listen_address, bound_port);
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, server->service_ != nullptr);
  health->SetServingStatus(true);
  health->SetServingStatus(kLivenessServiceName, true);
  if (options.stall_timeout_seconds > 0) {
    server->watchdog_ = std::make_unique<WorkerWatchdog>(
        std::chrono::seconds(options.stall_timeout_seconds),
        [jobs = server->jobs_.get(), worker = server->job_worker_.get()](std::chrono::steady_clock::duration limit) {
          return jobs != nullptr ? jobs->Stalled(limit) : worker->Stalled(limit);
        },
        [health](bool live) { health->SetServingStatus(kLivenessServiceName, live); });
  }
  return server;
}

QuantServer::~QuantServer() {
  Shutdown(std::chrono::milliseconds(0));
  // Scrapes read the job manager, which goes before the members declared ahead of it.
  metrics_endpoint_.reset();
  // Nothing runs jobs any more; the logger outlives the server.
  if (job_log_sink_ != nullptr) {
    std::vector<spdlog::sink_ptr>& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), job_log_sink_), sinks.end());
  }
}

void QuantServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  watchdog_.reset();  // before the workers and the health service it reads and reports to
  if (grpc_server_ != nullptr) grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  // Jobs first, while GetJob and WatchJob still answer, so watchers see them finish.
  const auto deadline = std::chrono::steady_clock::now() + grace;
  if (jobs_ != nullptr) jobs_->Drain(grace);
  if (job_worker_ != nullptr) job_worker_->Stop();  // its jobs go back to the queue, for other workers
  if (grpc_server_ != nullptr) {
    const auto left = std::max(std::chrono::steady_clock::duration::zero(), deadline - std::chrono::steady_clock::now());
    grpc_server_->Shutdown(std::chrono::system_clock::now() + left);
    grpc_server_->Wait();
  }
  if (blocking_pool_ != nullptr) blocking_pool_->Stop();
  if (stream_decode_pool_ != nullptr) stream_decode_pool_->Stop();
}

}  // namespace ptq::server
