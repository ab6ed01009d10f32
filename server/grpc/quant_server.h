#ifndef PTQ_SERVER_GRPC_QUANT_SERVER_H_
#define PTQ_SERVER_GRPC_QUANT_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpc/call_authenticator.h"
#include "grpc/quant_service.h"
#include "job_manager.h"
#include "job_store.h"
#include "metrics/metrics_http_endpoint.h"
#include "metrics/service_metrics.h"
#include "model_store.h"
#include "ptq/common/task_pool.h"
#include "server_options.h"
#include "job_worker.h"
#include "worker_watchdog.h"

namespace ptq::server {

// Owns everything ptq-server runs: the model and job stores, the job manager and its workers,
// the blocking pool, the gRPC server with QuantService, the standard health service and
// reflection, and the metrics endpoint. A server of the worker role has a JobWorker instead of
// the job manager, and serves health only.
class QuantServer {
 public:
  // The service name reported by grpc.health.v1 ("" reports the whole server too).
  static constexpr char kServiceName[] = "ptq.v1.QuantService";
  // The health service name that is SERVING while no worker is wedged (WorkerWatchdog).
  static constexpr char kLivenessServiceName[] = "liveness";

  // Prepares the state directory and binds the listening port; serving starts right away.
  // UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<QuantServer>> Start(const ServerOptions& options);

  ~QuantServer();  // Shutdown()s

  // "host:port" actually bound, with the real port when the options asked for port 0.
  const std::string& bound_address() const { return bound_address_; }
  // "host:port" of the metrics endpoint, with the real port; empty without --metrics-listen.
  const std::string& metrics_address() const { return metrics_address_; }
  // The devices the workers run on, one entry per worker.
  const std::vector<std::string>& worker_devices() const { return worker_devices_; }

  // Reads the --auth-token-file again (SIGHUP): calls from then on are judged by it. On an
  // error the identities already loaded stay, and the error says why.
  absl::Status ReloadIdentities() { return authenticator_->Reload(); }

  // Graceful stop: health turns NOT_SERVING and submissions are refused; running jobs get
  // until `grace` to finish, and any still running then are interrupted (their stored state
  // stays, so the next start re-queues them); then new calls are refused, calls in flight get
  // what is left of `grace` (then they are cancelled), background work is drained. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  QuantServer() = default;

  // First in, last out: the store, the jobs and the interceptors report to it until they are gone.
  std::unique_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<CallAuthenticator> authenticator_;
  std::unique_ptr<ModelStore> models_;
  std::unique_ptr<JobStore> job_store_;
  std::unique_ptr<JobLogs> job_logs_;
  std::shared_ptr<spdlog::sinks::sink> job_log_sink_;  // on the default logger while the server lives
  std::unique_ptr<JobManager> jobs_;        // roles all and api
  std::unique_ptr<JobWorker> job_worker_;   // role worker
  std::unique_ptr<TaskPool> blocking_pool_;
  std::unique_ptr<TaskPool> stream_decode_pool_;
  std::unique_ptr<QuantService> service_;                     // roles all and api
  std::unique_ptr<grpc::CallbackGenericService> worker_front_;  // role worker
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpEndpoint> metrics_endpoint_;
  std::unique_ptr<WorkerWatchdog> watchdog_;  // reports to grpc_server_'s health service
  std::string bound_address_;
  std::string metrics_address_;
  std::vector<std::string> worker_devices_;
  bool shut_down_ = false;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_QUANT_SERVER_H_
