#include "grpc/quant_service.h"

#include "grpc/calibration_stream_reactor.h"
#include "grpc/download_artifact_reactor.h"
#include "grpc/evaluate_reactor.h"
#include "grpc/status_util.h"
#include "grpc/upload_model_reactor.h"
#include "grpc/watch_job_reactor.h"

namespace ptq::server {
namespace {

// Finishes a unary call with `result`'s value in `response`, or with its error.
template <typename Message>
grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, absl::StatusOr<Message> result,
                                 Message* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

}  // namespace

QuantService::QuantService(const ModelStore* models, JobManager* jobs, std::filesystem::path results_dir,
                           TaskPool* blocking_pool, TaskPool* stream_decode_pool)
    : models_(models),
      jobs_(jobs),
      results_dir_(std::move(results_dir)),
      blocking_pool_(blocking_pool),
      stream_decode_pool_(stream_decode_pool) {}

grpc::ServerReadReactor<v1::UploadModelRequest>* QuantService::UploadModel(grpc::CallbackServerContext* /*context*/,
                                                                           v1::Model* response) {
  return new UploadModelReactor(models_, blocking_pool_, response);
}

grpc::ServerUnaryReactor* QuantService::GetModel(grpc::CallbackServerContext* context,
                                                 const v1::GetModelRequest* request, v1::Model* response) {
  return Answer(context, models_->Get(request->model_id()), response);
}

grpc::ServerUnaryReactor* QuantService::SubmitQuantJob(grpc::CallbackServerContext* context,
                                                       const v1::SubmitQuantJobRequest* request, v1::Job* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Validation opens the datasets, which can take a while on a large ImageNet folder.
  blocking_pool_->Post([this, reactor, request, response] {
    absl::StatusOr<v1::Job> job =
        jobs_->Submit(request->config(), request->idempotency_key(), request->validate_only());
    if (job.ok()) *response = *std::move(job);
    reactor->Finish(ToGrpcStatus(job.status()));
  });
  return reactor;
}

grpc::ServerReadReactor<v1::CalibrationBatch>* QuantService::StreamCalibrationBatch(
    grpc::CallbackServerContext* context, v1::CalibrationSummary* response) {
  return new CalibrationStreamReactor(context, jobs_, stream_decode_pool_, response);
}

grpc::ServerUnaryReactor* QuantService::GetJob(grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
                                               v1::Job* response) {
  return Answer(context, jobs_->Get(request->job_id()), response);
}

grpc::ServerWriteReactor<v1::Job>* QuantService::WatchJob(grpc::CallbackServerContext* /*context*/,
                                                          const v1::WatchJobRequest* request) {
  return new WatchJobReactor(jobs_, request->job_id());
}

grpc::ServerUnaryReactor* QuantService::ListJobs(grpc::CallbackServerContext* context,
                                                 const v1::ListJobsRequest* request, v1::ListJobsResponse* response) {
  return Answer(context, jobs_->List(*request), response);
}

grpc::ServerUnaryReactor* QuantService::CancelJob(grpc::CallbackServerContext* context,
                                                  const v1::CancelJobRequest* request, v1::Job* response) {
  return Answer(context, jobs_->Cancel(request->job_id()), response);
}

grpc::ServerWriteReactor<v1::EvaluateUpdate>* QuantService::Evaluate(grpc::CallbackServerContext* /*context*/,
                                                                     const v1::EvaluateRequest* request) {
  return new EvaluateReactor(jobs_, *request);
}

grpc::ServerWriteReactor<v1::ArtifactChunk>* QuantService::DownloadArtifact(
    grpc::CallbackServerContext* /*context*/, const v1::DownloadArtifactRequest* request) {
  return new DownloadArtifactReactor(jobs_, results_dir_, *request);
}

}  // namespace ptq::server
