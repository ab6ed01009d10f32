#include "grpc/quant_service.h"

#include "grpc/calibration_stream_reactor.h"
#include "grpc/download_artifact_reactor.h"
#include "grpc/evaluate_reactor.h"
#include "grpc/refused_call.h"
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

QuantService::QuantService(const CallAuthenticator* authenticator, const ModelStore* models, JobManager* jobs,
                           const JobLogs* job_logs, std::filesystem::path results_dir, TaskPool* blocking_pool,
                           TaskPool* stream_decode_pool)
    : authenticator_(authenticator),
      models_(models),
      jobs_(jobs),
      job_logs_(job_logs),
      results_dir_(std::move(results_dir)),
      blocking_pool_(blocking_pool),
      stream_decode_pool_(stream_decode_pool) {}

grpc::ServerReadReactor<v1::UploadModelRequest>* QuantService::UploadModel(grpc::CallbackServerContext* context,
                                                                           v1::Model* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return new RefusedRead<v1::UploadModelRequest>(ToGrpcStatus(caller.status()));
  return new UploadModelReactor(models_, blocking_pool_, caller->tenant, response);
}

grpc::ServerUnaryReactor* QuantService::GetModel(grpc::CallbackServerContext* context,
                                                 const v1::GetModelRequest* request, v1::Model* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return Answer<v1::Model>(context, caller.status(), response);
  return Answer(context, models_->Get(request->model_id(), caller->scope()), response);
}

grpc::ServerUnaryReactor* QuantService::ListModels(grpc::CallbackServerContext* context,
                                                   const v1::ListModelsRequest*, v1::ListModelsResponse* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return Answer<v1::ListModelsResponse>(context, caller.status(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  blocking_pool_->Post([this, reactor, response, scope = caller->scope()] {
    for (v1::Model& model : models_->List(scope)) *response->add_models() = std::move(model);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* QuantService::DeleteModel(grpc::CallbackServerContext* context,
                                                    const v1::DeleteModelRequest* request,
                                                    v1::DeleteModelResponse* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return Answer<v1::DeleteModelResponse>(context, caller.status(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  blocking_pool_->Post([this, reactor, request, response, scope = caller->scope()] {
    absl::StatusOr<bool> removed = jobs_->DeleteModel(request->model_id(), scope);
    if (removed.ok()) response->set_bytes_removed(*removed);
    reactor->Finish(ToGrpcStatus(removed.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* QuantService::SubmitQuantJob(grpc::CallbackServerContext* context,
                                                       const v1::SubmitQuantJobRequest* request, v1::Job* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return Answer<v1::Job>(context, caller.status(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Validation opens the datasets, which can take a while on a large ImageNet folder.
  blocking_pool_->Post([this, reactor, request, response, scope = caller->scope()] {
    absl::StatusOr<v1::Job> job =
        jobs_->Submit(request->config(), request->idempotency_key(), request->validate_only(), scope);
    if (job.ok()) *response = *std::move(job);
    reactor->Finish(ToGrpcStatus(job.status()));
  });
  return reactor;
}

grpc::ServerReadReactor<v1::CalibrationBatch>* QuantService::StreamCalibrationBatch(
    grpc::CallbackServerContext* context, v1::CalibrationSummary* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return new RefusedRead<v1::CalibrationBatch>(ToGrpcStatus(caller.status()));
  return new CalibrationStreamReactor(context, jobs_, stream_decode_pool_, caller->scope(), response);
}

grpc::ServerUnaryReactor* QuantService::GetJob(grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
                                               v1::Job* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return Answer<v1::Job>(context, caller.status(), response);
  return Answer(context, jobs_->Get(request->job_id(), caller->scope()), response);
}

grpc::ServerWriteReactor<v1::Job>* QuantService::WatchJob(grpc::CallbackServerContext* context,
                                                          const v1::WatchJobRequest* request) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return new RefusedWrite<v1::Job>(ToGrpcStatus(caller.status()));
  return new WatchJobReactor(jobs_, request->job_id(), caller->scope());
}

grpc::ServerUnaryReactor* QuantService::ListJobs(grpc::CallbackServerContext* context,
                                                 const v1::ListJobsRequest* request, v1::ListJobsResponse* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return Answer<v1::ListJobsResponse>(context, caller.status(), response);
  return Answer(context, jobs_->List(*request, caller->scope()), response);
}

grpc::ServerUnaryReactor* QuantService::CancelJob(grpc::CallbackServerContext* context,
                                                  const v1::CancelJobRequest* request, v1::Job* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return Answer<v1::Job>(context, caller.status(), response);
  return Answer(context, jobs_->Cancel(request->job_id(), caller->scope()), response);
}

grpc::ServerUnaryReactor* QuantService::DeleteJob(grpc::CallbackServerContext* context,
                                                  const v1::DeleteJobRequest* request, v1::DeleteJobResponse* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return Answer<v1::DeleteJobResponse>(context, caller.status(), response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Removing a result directory is file work.
  blocking_pool_->Post([this, reactor, request, scope = caller->scope()] {
    reactor->Finish(ToGrpcStatus(jobs_->Delete(request->job_id(), scope)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* QuantService::GetJobLogs(grpc::CallbackServerContext* context,
                                                   const v1::GetJobLogsRequest* request, v1::JobLogs* response) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return Answer<v1::JobLogs>(context, caller.status(), response);
  if (absl::StatusOr<v1::Job> job = jobs_->Get(request->job_id(), caller->scope()); !job.ok()) {
    return Answer<v1::JobLogs>(context, job.status(), response);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  blocking_pool_->Post([this, reactor, request, response] {
    absl::StatusOr<std::vector<std::string>> lines = job_logs_->Read(request->job_id());
    if (lines.ok()) {
      response->set_job_id(request->job_id());
      for (std::string& line : *lines) response->add_lines(std::move(line));
    }
    reactor->Finish(ToGrpcStatus(lines.status()));
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::EvaluateUpdate>* QuantService::Evaluate(grpc::CallbackServerContext* context,
                                                                     const v1::EvaluateRequest* request) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kSubmitter);
  if (!caller.ok()) return new RefusedWrite<v1::EvaluateUpdate>(ToGrpcStatus(caller.status()));
  return new EvaluateReactor(jobs_, *request, caller->scope());
}

grpc::ServerWriteReactor<v1::ArtifactChunk>* QuantService::DownloadArtifact(
    grpc::CallbackServerContext* context, const v1::DownloadArtifactRequest* request) {
  absl::StatusOr<Identity> caller = authenticator_->Admit(*context, Role::kReader);
  if (!caller.ok()) return new RefusedWrite<v1::ArtifactChunk>(ToGrpcStatus(caller.status()));
  return new DownloadArtifactReactor(jobs_, results_dir_, caller->scope(), *request);
}

}  // namespace ptq::server
