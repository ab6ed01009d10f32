#include "quant_client.h"

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ptq::client {
namespace {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Calls that change nothing are retried by gRPC itself when the server is unavailable (a
// restart, a rolling update, a dropped connection): up to 5 attempts, 0.2 s to 2 s apart.
constexpr char kRetryServiceConfig[] = R"({
  "methodConfig": [{
    "name": [{"service": "ptq.v1.QuantService", "method": "GetJob"},
             {"service": "ptq.v1.QuantService", "method": "ListJobs"},
             {"service": "ptq.v1.QuantService", "method": "GetModel"},
             {"service": "ptq.v1.QuantService", "method": "ListModels"},
             {"service": "ptq.v1.QuantService", "method": "GetJobLogs"},
             {"service": "grpc.health.v1.Health", "method": "Check"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "2s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]}
  }]
})";

grpc::ChannelArguments ChannelArguments() {
  grpc::ChannelArguments arguments;
  // Calibration batches of 32 x 3 x 224 x 224 floats are 19 MB; gRPC's default is 4 MB.
  arguments.SetMaxSendMessageSize(64 << 20);
  arguments.SetMaxReceiveMessageSize(64 << 20);
  // A watch can sit silent for minutes: pings every 30 s find a dead connection (a NAT or load
  // balancer that forgot it) instead of waiting forever. The server permits pings this often.
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // After a lost connection gRPC waits before it dials again, doubling up to 2 minutes by
  // default; a restarted server is found within 4 s instead.
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 4000);
  arguments.SetServiceConfigJSON(kRetryServiceConfig);
  return arguments;
}

}  // namespace

QuantClient::QuantClient(const std::string& server_address, std::shared_ptr<grpc::ChannelCredentials> credentials,
                         std::string bearer_token, std::chrono::milliseconds timeout)
    : channel_(grpc::CreateCustomChannel(server_address, std::move(credentials), ChannelArguments())),
      stub_(v1::QuantService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)),
      bearer_token_(std::move(bearer_token)),
      timeout_(timeout) {}

std::unique_ptr<grpc::ClientContext> QuantClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  AddToken(context.get());
  return context;
}

absl::Status QuantClient::Explain(const grpc::Status& status) const {
  // With retries, a server that refuses connections runs the clock out instead of failing at
  // once: no connection within the deadline is "unavailable", not "too slow".
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && channel_->GetState(false) != GRPC_CHANNEL_READY) {
    return absl::UnavailableError(absl::StrCat("no connection within the deadline (", status.error_message(), ")"));
  }
  return FromGrpcStatus(status);
}

void QuantClient::AddToken(grpc::ClientContext* context) const {
  if (!bearer_token_.empty()) context->AddMetadata("authorization", "Bearer " + bearer_token_);
}

absl::StatusOr<std::string> QuantClient::CheckHealth(const std::string& service) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  auto context = NewContext();
  grpc::Status status = health_stub_->Check(context.get(), request, &response);
  if (!status.ok()) return Explain(status);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

absl::StatusOr<v1::Model> QuantClient::GetModel(const std::string& model_id) {
  v1::GetModelRequest request;
  request.set_model_id(model_id);
  v1::Model response;
  auto context = NewContext();
  grpc::Status status = stub_->GetModel(context.get(), request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::Model> QuantClient::UploadModel(
    const std::string& path, int64_t size_bytes, const std::string& sha256,
    const std::function<void(int64_t)>& on_progress) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));

  v1::Model response;
  // The per-call timeout, plus a second per MiB: a large model is not cut off for its size.
  auto context = NewContext();
  context->set_deadline(std::chrono::system_clock::now() + timeout_ + std::chrono::seconds(size_bytes >> 20));
  std::unique_ptr<grpc::ClientWriter<v1::UploadModelRequest>> writer =
      stub_->UploadModel(context.get(), &response);

  v1::UploadModelRequest message;
  v1::UploadModelHeader* header = message.mutable_header();
  header->set_filename(std::filesystem::path(path).filename().string());
  header->set_size_bytes(size_bytes);
  header->set_sha256(sha256);
  // A failed Write means the server already ended the call; Finish() below says why.
  bool open = writer->Write(message);
  std::vector<char> buffer(kUploadChunkBytes);
  int64_t sent = 0;
  while (open && file.read(buffer.data(), buffer.size()).gcount() > 0) {
    message.set_chunk(buffer.data(), static_cast<size_t>(file.gcount()));
    open = writer->Write(message);
    sent += file.gcount();
    if (on_progress) on_progress(sent);
  }
  if (open) writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::Job> QuantClient::SubmitQuantJob(const v1::JobConfig& config,
                                                    const std::string& idempotency_key, bool validate_only) {
  v1::SubmitQuantJobRequest request;
  request.set_validate_only(validate_only);
  *request.mutable_config() = config;
  request.set_idempotency_key(idempotency_key);
  v1::Job job;
  auto context = NewContext();
  grpc::Status status = stub_->SubmitQuantJob(context.get(), request, &job);
  if (!status.ok()) return Explain(status);
  return job;
}

absl::StatusOr<v1::Job> QuantClient::GetJob(const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  auto context = NewContext();
  grpc::Status status = stub_->GetJob(context.get(), request, &job);
  if (!status.ok()) return Explain(status);
  return job;
}

absl::StatusOr<v1::ListJobsResponse> QuantClient::ListJobs(const v1::ListJobsRequest& request) {
  v1::ListJobsResponse response;
  auto context = NewContext();
  grpc::Status status = stub_->ListJobs(context.get(), request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::Job> QuantClient::CancelJob(const std::string& job_id) {
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  auto context = NewContext();
  grpc::Status status = stub_->CancelJob(context.get(), request, &job);
  if (!status.ok()) return Explain(status);
  return job;
}

absl::StatusOr<v1::JobLogs> QuantClient::GetJobLogs(const std::string& job_id) {
  v1::GetJobLogsRequest request;
  request.set_job_id(job_id);
  v1::JobLogs logs;
  auto context = NewContext();
  grpc::Status status = stub_->GetJobLogs(context.get(), request, &logs);
  if (!status.ok()) return Explain(status);
  return logs;
}

absl::Status QuantClient::DeleteJob(const std::string& job_id) {
  v1::DeleteJobRequest request;
  request.set_job_id(job_id);
  v1::DeleteJobResponse response;
  auto context = NewContext();
  return Explain(stub_->DeleteJob(context.get(), request, &response));
}

absl::StatusOr<v1::ListModelsResponse> QuantClient::ListModels() {
  v1::ListModelsResponse response;
  auto context = NewContext();
  grpc::Status status = stub_->ListModels(context.get(), v1::ListModelsRequest(), &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::DeleteModelResponse> QuantClient::DeleteModel(const std::string& model_id) {
  v1::DeleteModelRequest request;
  request.set_model_id(model_id);
  v1::DeleteModelResponse response;
  auto context = NewContext();
  grpc::Status status = stub_->DeleteModel(context.get(), request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::CalibrationSummary> QuantClient::StreamCalibration(
    const std::function<absl::StatusOr<bool>(v1::CalibrationBatch*)>& next_batch,
    const std::function<void(int64_t batches)>& on_batch) {
  grpc::ClientContext context;
  AddToken(&context);
  {
    std::lock_guard<std::mutex> lock(streaming_mutex_);
    streaming_context_ = &context;
  }
  v1::CalibrationSummary summary;
  std::unique_ptr<grpc::ClientWriter<v1::CalibrationBatch>> writer =
      stub_->StreamCalibrationBatch(&context, &summary);
  v1::CalibrationBatch batch;
  int64_t sent = 0;
  absl::Status local;
  while (true) {
    batch.Clear();
    absl::StatusOr<bool> more = next_batch(&batch);
    if (!more.ok()) {
      local = more.status();
      context.TryCancel();  // the server must not take a partial stream as complete
      break;
    }
    if (!*more) {
      writer->WritesDone();
      break;
    }
    if (!writer->Write(batch)) break;  // the server ended the call; Finish says why
    if (on_batch) on_batch(++sent);
  }
  grpc::Status status = writer->Finish();
  {
    std::lock_guard<std::mutex> lock(streaming_mutex_);
    streaming_context_ = nullptr;
  }
  if (!local.ok()) return local;
  if (!status.ok()) return Explain(status);
  return summary;
}

absl::Status QuantClient::WatchJob(const std::string& job_id, const std::function<void(const v1::Job&)>& on_change) {
  grpc::ClientContext context;
  AddToken(&context);
  {
    std::lock_guard<std::mutex> lock(streaming_mutex_);
    streaming_context_ = &context;
  }
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader = stub_->WatchJob(&context, request);
  v1::Job job;
  while (reader->Read(&job)) on_change(job);
  grpc::Status status = reader->Finish();
  {
    std::lock_guard<std::mutex> lock(streaming_mutex_);
    streaming_context_ = nullptr;
  }
  return Explain(status);
}

void QuantClient::CancelStreamingCall() {
  std::lock_guard<std::mutex> lock(streaming_mutex_);
  if (streaming_context_ != nullptr) streaming_context_->TryCancel();
}

absl::StatusOr<v1::Metrics> QuantClient::Evaluate(const v1::EvaluateRequest& request,
                                                  const std::function<void(const v1::Progress&)>& on_progress) {
  grpc::ClientContext context;
  AddToken(&context);
  std::unique_ptr<grpc::ClientReader<v1::EvaluateUpdate>> reader = stub_->Evaluate(&context, request);
  v1::EvaluateUpdate update;
  v1::Metrics metrics;
  while (reader->Read(&update)) {
    if (update.has_metrics()) metrics = update.metrics();
    if (update.has_progress() && on_progress) on_progress(update.progress());
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Explain(status);
  return metrics;
}

absl::StatusOr<v1::Artifact> QuantClient::DownloadArtifact(const std::string& job_id, const std::string& path,
                                                           const std::string& destination) {
  v1::DownloadArtifactRequest request;
  request.set_job_id(job_id);
  request.set_path(path);
  auto context = NewContext();
  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader = stub_->DownloadArtifact(context.get(), request);
  std::ofstream out(destination, std::ios::binary | std::ios::trunc);
  if (!out) {
    context->TryCancel();
    reader->Finish();
    return absl::PermissionDeniedError(absl::StrCat("cannot write '", destination, "'"));
  }
  v1::ArtifactChunk chunk;
  v1::Artifact header;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      header = chunk.header();
    } else {
      out << chunk.data();
    }
  }
  grpc::Status status = reader->Finish();
  out.close();
  if (!status.ok()) return Explain(status);
  if (!out) return absl::DataLossError(absl::StrCat("cannot write '", destination, "'"));
  return header;
}

ErrorOrigin OriginOf(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return ErrorOrigin::kUnreachable;
  }
  return ErrorOrigin::kServer;
}

}  // namespace ptq::client
