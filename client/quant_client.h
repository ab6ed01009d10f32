#ifndef PTQ_CLIENT_QUANT_CLIENT_H_
#define PTQ_CLIENT_QUANT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ptq/v1/service.grpc.pb.h"

namespace ptq::client {

// Whose word an error is: the CLI's exit code depends on it.
enum class ErrorOrigin {
  kServer,       // the server answered with an error status
  kUnreachable,  // no answer: connection failed or the deadline passed
};

// Thin wrapper over the generated stubs: one method per RPC the CLI uses, each with the
// configured deadline, returning absl statuses that keep the gRPC code and message.
class QuantClient {
 public:
  // Bytes per UploadModel chunk: well under gRPC's default 4 MiB message limit.
  static constexpr size_t kUploadChunkBytes = 1 << 20;

  // `bearer_token`, when not empty, goes with every call as `authorization: Bearer TOKEN`.
  QuantClient(const std::string& server_address, std::shared_ptr<grpc::ChannelCredentials> credentials,
              std::string bearer_token, std::chrono::milliseconds timeout);

  // grpc.health.v1 Check for `service` ("" is the whole server): "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> CheckHealth(const std::string& service);

  absl::StatusOr<v1::Model> GetModel(const std::string& model_id);

  // Streams a local file whose size and sha256 the caller computed. `on_progress` gets the
  // bytes sent so far after each chunk.
  absl::StatusOr<v1::Model> UploadModel(const std::string& path, int64_t size_bytes,
                                        const std::string& sha256,
                                        const std::function<void(int64_t)>& on_progress);

  absl::StatusOr<v1::Job> SubmitQuantJob(const v1::JobConfig& config, const std::string& idempotency_key,
                                         bool validate_only = false);
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id);
  absl::StatusOr<v1::JobLogs> GetJobLogs(const std::string& job_id);
  absl::Status DeleteJob(const std::string& job_id);
  absl::StatusOr<v1::ListModelsResponse> ListModels();
  absl::StatusOr<v1::DeleteModelResponse> DeleteModel(const std::string& model_id);

  // Sends the batches `next_batch` yields (false: no more) as one StreamCalibrationBatch
  // call; `on_batch` hears of each batch sent. No deadline beyond the per-call timeout per
  // batch: the stream lasts as long as the data.
  absl::StatusOr<v1::CalibrationSummary> StreamCalibration(
      const std::function<absl::StatusOr<bool>(v1::CalibrationBatch*)>& next_batch,
      const std::function<void(int64_t batches)>& on_batch);

  // WatchJob: `on_change` gets every message until the job ends. No deadline: jobs take as
  // long as they take; Cancel() (e.g. from a signal handler thread) ends it.
  absl::Status WatchJob(const std::string& job_id, const std::function<void(const v1::Job&)>& on_change);
  // Evaluate: `on_progress` gets progress messages; returns the metrics.
  absl::StatusOr<v1::Metrics> Evaluate(const v1::EvaluateRequest& request,
                                       const std::function<void(const v1::Progress&)>& on_progress);
  // DownloadArtifact into `destination`; returns the header (path, size, sha256).
  absl::StatusOr<v1::Artifact> DownloadArtifact(const std::string& job_id, const std::string& path,
                                                const std::string& destination);

  // Cancels the streaming call in flight (WatchJob, StreamCalibration), if any. Thread-safe.
  void CancelStreamingCall();

 private:
  // With the deadline and the token.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // With the token only, for streams that last as long as they need.
  void AddToken(grpc::ClientContext* context) const;
  // The call's status as an absl::Status; DEADLINE_EXCEEDED without a connection to the
  // server becomes UNAVAILABLE (nobody answered, rather than the server being slow).
  absl::Status Explain(const grpc::Status& status) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::QuantService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  const std::string bearer_token_;
  std::chrono::milliseconds timeout_;
  std::mutex streaming_mutex_;
  grpc::ClientContext* streaming_context_ = nullptr;
};

// kUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED, kServer for every other error.
ErrorOrigin OriginOf(const absl::Status& status);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_QUANT_CLIENT_H_
