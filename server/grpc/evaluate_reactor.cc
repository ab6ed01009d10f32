#include "grpc/evaluate_reactor.h"

#include "grpc/status_util.h"

namespace ptq::server {

EvaluateReactor::EvaluateReactor(JobManager* jobs, const v1::EvaluateRequest& request, const TenantScope& caller) {
  link_->reactor = this;
  auto progress = [link = link_](int64_t done, int64_t total) {
    std::lock_guard<std::mutex> lock(link->mutex);
    if (link->reactor != nullptr) link->reactor->OnProgress(done, total);
  };
  auto result = [link = link_](absl::StatusOr<v1::Metrics> metrics) {
    std::lock_guard<std::mutex> lock(link->mutex);
    if (link->reactor != nullptr) link->reactor->OnResult(std::move(metrics));
  };
  if (absl::Status queued = jobs->Evaluate(request, caller, cancelled_, progress, result); !queued.ok()) {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    Finish(ToGrpcStatus(queued));
  }
}

void EvaluateReactor::OnProgress(int64_t done, int64_t total) {
  std::lock_guard<std::mutex> lock(mutex_);
  v1::EvaluateUpdate update;
  update.mutable_progress()->set_done(done);
  update.mutable_progress()->set_total(total);
  update.mutable_progress()->set_unit("images");
  pending_progress_ = std::move(update);
  if (!write_in_flight_) WriteNextLocked();
}

void EvaluateReactor::OnResult(absl::StatusOr<v1::Metrics> metrics) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_progress_.reset();
  if (metrics.ok()) {
    v1::EvaluateUpdate update;
    *update.mutable_metrics() = *std::move(metrics);
    pending_result_ = std::move(update);
    pending_status_ = grpc::Status::OK;
  } else {
    pending_status_ = ToGrpcStatus(metrics.status());
  }
  if (!write_in_flight_) WriteNextLocked();
}

void EvaluateReactor::WriteNextLocked() {
  if (finished_) return;
  std::optional<v1::EvaluateUpdate>& next = pending_result_ ? pending_result_ : pending_progress_;
  if (next) {
    writing_ = *std::move(next);
    next.reset();
    write_in_flight_ = true;
    StartWrite(&writing_);
  } else if (pending_status_) {
    finished_ = true;
    Finish(*pending_status_);
  }
}

void EvaluateReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_in_flight_ = false;
  if (!ok) {
    cancelled_->store(true);
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"));
    return;
  }
  WriteNextLocked();
}

void EvaluateReactor::OnCancel() {
  cancelled_->store(true);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!write_in_flight_ && !finished_) {
    finished_ = true;
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "evaluation cancelled"));
  }
}

void EvaluateReactor::OnDone() {
  {
    std::lock_guard<std::mutex> lock(link_->mutex);
    link_->reactor = nullptr;
  }
  delete this;
}

}  // namespace ptq::server
