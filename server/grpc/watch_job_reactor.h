#ifndef PTQ_SERVER_GRPC_WATCH_JOB_REACTOR_H_
#define PTQ_SERVER_GRPC_WATCH_JOB_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <mutex>
#include <string>

#include "job_manager.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// One WatchJob call: writes the job as it is, then every change in order, and finishes once a
// final state has been written. Changes that arrive while a write is in flight wait in a
// queue. Deletes itself in OnDone.
class WatchJobReactor : public grpc::ServerWriteReactor<v1::Job> {
 public:
  WatchJobReactor(JobManager* jobs, const std::string& job_id, const TenantScope& caller);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void Enqueue(const v1::Job& job);
  // Requires mutex_.
  void WriteNextLocked();
  void FinishLocked(const grpc::Status& status);

  JobManager* jobs_;
  std::mutex mutex_;
  std::deque<v1::Job> pending_;
  v1::Job writing_;
  bool write_in_flight_ = false;
  bool started_ = false;  // writes wait until the constructor has registered the watch
  bool finished_ = false;
  int64_t watch_id_ = 0;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_WATCH_JOB_REACTOR_H_
