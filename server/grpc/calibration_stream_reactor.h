#ifndef PTQ_SERVER_GRPC_CALIBRATION_STREAM_REACTOR_H_
#define PTQ_SERVER_GRPC_CALIBRATION_STREAM_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "job_manager.h"
#include "ptq/common/task_pool.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// One StreamCalibrationBatch call: claims the job's stream on the first message, checks and
// decodes each batch on `decode_pool` (never on a gRPC callback thread), and when the client
// closes its side with all quant_batch_num batches hands them to the job, which is queued.
// Any error, or a stream that stops short, leaves the job waiting for a complete stream; so
// does a stream the job manager cancels for sending nothing for --stream-idle-timeout.
// Deletes itself in OnDone.
class CalibrationStreamReactor : public grpc::ServerReadReactor<v1::CalibrationBatch> {
 public:
  // `caller`: whose jobs the stream may deliver to.
  CalibrationStreamReactor(grpc::CallbackServerContext* context, JobManager* jobs, TaskPool* decode_pool,
                           TenantScope caller, v1::CalibrationSummary* response);

  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  absl::Status AddBatch();
  void OnEndOfStream();
  void FinishWith(const absl::Status& status);

  grpc::CallbackServerContext* context_;
  JobManager* jobs_;
  TaskPool* decode_pool_;
  const TenantScope caller_;
  v1::CalibrationSummary* response_;
  v1::CalibrationBatch batch_;
  std::string job_id_;
  bool claimed_ = false;
  StreamExpectation expected_;
  std::unique_ptr<core::InMemoryBatches> data_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_CALIBRATION_STREAM_REACTOR_H_
