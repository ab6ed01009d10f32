#include "grpc/watch_job_reactor.h"

#include "grpc/status_util.h"
#include "job_states.h"

namespace ptq::server {
WatchJobReactor::WatchJobReactor(JobManager* jobs, const std::string& job_id, const TenantScope& caller)
    : jobs_(jobs) {
  absl::StatusOr<int64_t> watch_id = jobs_->Watch(job_id, caller, [this](const v1::Job& job) { Enqueue(job); });
  std::lock_guard<std::mutex> lock(mutex_);
  if (!watch_id.ok()) {
    FinishLocked(ToGrpcStatus(watch_id.status()));
    return;
  }
  watch_id_ = *watch_id;
  started_ = true;
  WriteNextLocked();
}

void WatchJobReactor::Enqueue(const v1::Job& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  pending_.push_back(job);
  if (started_ && !write_in_flight_) WriteNextLocked();
}

void WatchJobReactor::WriteNextLocked() {
  if (pending_.empty() || finished_) return;
  writing_ = std::move(pending_.front());
  pending_.pop_front();
  write_in_flight_ = true;
  StartWrite(&writing_);
}

void WatchJobReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  write_in_flight_ = false;
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away"));
  } else if (IsFinalState(writing_.state())) {
    FinishLocked(grpc::Status::OK);
  } else {
    WriteNextLocked();
  }
}

void WatchJobReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!write_in_flight_) FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
}

void WatchJobReactor::FinishLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  pending_.clear();
  Finish(status);
}

void WatchJobReactor::OnDone() {
  if (watch_id_ != 0) jobs_->Unwatch(watch_id_);
  delete this;
}

}  // namespace ptq::server
