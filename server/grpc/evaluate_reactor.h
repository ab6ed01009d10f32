#ifndef PTQ_SERVER_GRPC_EVALUATE_REACTOR_H_
#define PTQ_SERVER_GRPC_EVALUATE_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "job_manager.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// One Evaluate call: queues the evaluation on the worker pool, streams progress (the latest
// one whenever the previous write is done, so a slow reader never holds up the worker), then
// the metrics. A cancelled call stops the evaluation. Deletes itself in OnDone.
class EvaluateReactor : public grpc::ServerWriteReactor<v1::EvaluateUpdate> {
 public:
  EvaluateReactor(JobManager* jobs, const v1::EvaluateRequest& request, const TenantScope& caller);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the worker's callbacks reach; outlives the reactor, which detaches itself in OnDone.
  struct Link {
    std::mutex mutex;
    EvaluateReactor* reactor = nullptr;
  };

  void OnProgress(int64_t done, int64_t total);
  void OnResult(absl::StatusOr<v1::Metrics> metrics);
  // Requires mutex_.
  void WriteNextLocked();

  std::shared_ptr<Link> link_ = std::make_shared<Link>();
  std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::mutex mutex_;
  std::optional<v1::EvaluateUpdate> pending_progress_;
  std::optional<v1::EvaluateUpdate> pending_result_;
  std::optional<grpc::Status> pending_status_;
  v1::EvaluateUpdate writing_;
  bool write_in_flight_ = false;
  bool finished_ = false;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_EVALUATE_REACTOR_H_
