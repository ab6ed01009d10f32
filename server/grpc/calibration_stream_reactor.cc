#include "grpc/calibration_stream_reactor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "grpc/status_util.h"
#include "spdlog/spdlog.h"

namespace ptq::server {

CalibrationStreamReactor::CalibrationStreamReactor(grpc::CallbackServerContext* context, JobManager* jobs,
                                                   TaskPool* decode_pool, TenantScope caller,
                                                   v1::CalibrationSummary* response)
    : context_(context), jobs_(jobs), decode_pool_(decode_pool), caller_(std::move(caller)), response_(response) {
  StartRead(&batch_);
}

void CalibrationStreamReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client closed its side, or the call was cancelled
    OnEndOfStream();
    return;
  }
  decode_pool_->Post([this] {
    if (absl::Status added = AddBatch(); !added.ok()) {
      FinishWith(added);
      return;
    }
    StartRead(&batch_);
  });
}

absl::Status CalibrationStreamReactor::AddBatch() {
  if (!claimed_) {
    if (batch_.job_id().empty()) return absl::InvalidArgumentError("job_id is required in the first message");
    absl::StatusOr<StreamExpectation> expected = jobs_->BeginCalibrationStream(batch_.job_id(), caller_, context_);
    if (!expected.ok()) return expected.status();
    claimed_ = true;
    job_id_ = batch_.job_id();
    expected_ = *std::move(expected);
    data_ = std::make_unique<core::InMemoryBatches>(expected_.preprocess);
    response_->set_job_id(job_id_);
  } else if (!batch_.job_id().empty() && batch_.job_id() != job_id_) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id '", batch_.job_id(), "' differs from the stream's first message ('", job_id_, "')"));
  } else {
    jobs_->NoteStreamActivity(job_id_);
  }
  const int64_t number = data_->num_batches() + 1;
  if (number > expected_.batches) {
    return absl::InvalidArgumentError(absl::StrCat("job ", job_id_, " takes quant_batch_num = ", expected_.batches,
                                                   " batches; batch ", number, " is one too many"));
  }
  std::vector<int32_t> labels(batch_.labels().begin(), batch_.labels().end());
  int64_t images = 0;
  switch (batch_.data_case()) {
    case v1::CalibrationBatch::kTensor:
      images = batch_.tensor().shape().empty() ? 0 : batch_.tensor().shape(0);
      break;
    case v1::CalibrationBatch::kImages:
      images = batch_.images().images_size();
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("batch ", number, " has neither tensor nor images"));
  }
  if (images > expected_.max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", number, " has ", images,
                                                   " images; quant_batch_size is ", expected_.max_batch_size));
  }
  // Held before decoding: what the batch becomes in memory, whatever it was on the wire.
  if (absl::Status held = jobs_->HoldStreamBytes(job_id_, std::max<int64_t>(images, 0) *
                                                              expected_.preprocess.sample_numel() *
                                                              static_cast<int64_t>(sizeof(float)));
      !held.ok()) {
    return held;
  }
  absl::Status added;
  if (batch_.data_case() == v1::CalibrationBatch::kTensor) {
    const v1::Tensor& tensor = batch_.tensor();
    added = data_->AddTensor({tensor.shape().begin(), tensor.shape().end()}, tensor.data(), std::move(labels));
  } else {
    added = data_->AddEncodedImages({batch_.images().images().begin(), batch_.images().images().end()},
                                    std::move(labels));
  }
  if (!added.ok()) return absl::InvalidArgumentError(absl::StrCat("batch ", number, ": ", added.message()));
  return absl::OkStatus();
}

void CalibrationStreamReactor::OnEndOfStream() {
  if (!claimed_) {
    FinishWith(absl::InvalidArgumentError("the stream ended before its first batch"));
    return;
  }
  if (data_->num_batches() < expected_.batches) {
    FinishWith(absl::InvalidArgumentError(absl::StrCat(
        "the stream ended after ", data_->num_batches(), " of ", expected_.batches, " batches; job ", job_id_,
        " keeps waiting for a complete stream")));
    return;
  }
  response_->set_batches_received(data_->num_batches());
  response_->set_images_received(data_->num_images());
  const absl::Status completed = jobs_->CompleteCalibrationStream(job_id_, std::move(data_));
  claimed_ = false;  // handed over (or refused): nothing to abandon
  if (completed.ok()) {
    spdlog::info("job {} received {} calibration batches ({} images)", job_id_, response_->batches_received(),
                 response_->images_received());
  }
  Finish(ToGrpcStatus(completed));
}

void CalibrationStreamReactor::FinishWith(const absl::Status& status) {
  // Released before the error goes out, so a client that retries on seeing it never finds the
  // job still claimed by this stream (OnDone may run later than the client's next call).
  if (claimed_) {
    jobs_->AbandonCalibrationStream(job_id_);
    claimed_ = false;
  }
  spdlog::warn("calibration stream{}{} rejected: {}", job_id_.empty() ? "" : " for job ", job_id_, std::string(status.message()));
  Finish(ToGrpcStatus(status));
}

void CalibrationStreamReactor::OnDone() { delete this; }

}  // namespace ptq::server
