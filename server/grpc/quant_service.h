#ifndef PTQ_SERVER_GRPC_QUANT_SERVICE_H_
#define PTQ_SERVER_GRPC_QUANT_SERVICE_H_

#include <filesystem>

#include "grpc/call_authenticator.h"
#include "job_logs.h"
#include "job_manager.h"
#include "model_store.h"
#include "ptq/common/task_pool.h"
#include "ptq/v1/service.grpc.pb.h"

namespace ptq::server {

// The gRPC front of ptq.v1.QuantService: admits each call (who it is, whether its role may make
// it; the jobs and models it names must be its tenant's), turns it into work for the model
// store and the job manager, and their statuses into gRPC statuses. Blocking work runs on pools, never on
// gRPC's callback threads: committing uploads and validating submitted jobs on
// `blocking_pool`, decoding streamed batches on `stream_decode_pool`, so that a client
// streaming large images cannot delay anyone's submission.
class QuantService final : public v1::QuantService::CallbackService {
 public:
  // Borrows everything; it must outlive the gRPC server.
  QuantService(const CallAuthenticator* authenticator, const ModelStore* models, JobManager* jobs,
               const JobLogs* job_logs, std::filesystem::path results_dir, TaskPool* blocking_pool,
               TaskPool* stream_decode_pool);

  grpc::ServerReadReactor<v1::UploadModelRequest>* UploadModel(grpc::CallbackServerContext* context,
                                                              v1::Model* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteModel(grpc::CallbackServerContext* context, const v1::DeleteModelRequest* request,
                                        v1::DeleteModelResponse* response) override;
  grpc::ServerUnaryReactor* SubmitQuantJob(grpc::CallbackServerContext* context,
                                           const v1::SubmitQuantJobRequest* request, v1::Job* response) override;
  grpc::ServerReadReactor<v1::CalibrationBatch>* StreamCalibrationBatch(grpc::CallbackServerContext* context,
                                                                        v1::CalibrationSummary* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
                                   v1::Job* response) override;
  grpc::ServerWriteReactor<v1::Job>* WatchJob(grpc::CallbackServerContext* context,
                                              const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context, const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context, const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* context, const v1::DeleteJobRequest* request,
                                      v1::DeleteJobResponse* response) override;
  grpc::ServerUnaryReactor* GetJobLogs(grpc::CallbackServerContext* context, const v1::GetJobLogsRequest* request,
                                       v1::JobLogs* response) override;
  grpc::ServerWriteReactor<v1::EvaluateUpdate>* Evaluate(grpc::CallbackServerContext* context,
                                                         const v1::EvaluateRequest* request) override;
  grpc::ServerWriteReactor<v1::ArtifactChunk>* DownloadArtifact(grpc::CallbackServerContext* context,
                                                                const v1::DownloadArtifactRequest* request) override;

 private:
  const CallAuthenticator* authenticator_;
  const ModelStore* models_;
  JobManager* jobs_;
  const JobLogs* job_logs_;
  const std::filesystem::path results_dir_;
  TaskPool* blocking_pool_;
  TaskPool* stream_decode_pool_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_QUANT_SERVICE_H_
