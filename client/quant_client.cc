#include "quant_client.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ptq::client {
namespace {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace

QuantClient::QuantClient(const std::string& server_address, std::chrono::milliseconds timeout)
    : channel_(grpc::CreateChannel(server_address, grpc::InsecureChannelCredentials())),
      stub_(v1::QuantService::NewStub(channel_)),
      health_stub_(grpc::health::v1::Health::NewStub(channel_)),
      timeout_(timeout) {}

std::unique_ptr<grpc::ClientContext> QuantClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout_);
  return context;
}

absl::StatusOr<std::string> QuantClient::CheckHealth(const std::string& service) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  auto context = NewContext();
  grpc::Status status = health_stub_->Check(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

absl::StatusOr<v1::Model> QuantClient::GetModel(const std::string& model_id) {
  v1::GetModelRequest request;
  request.set_model_id(model_id);
  v1::Model response;
  auto context = NewContext();
  grpc::Status status = stub_->GetModel(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::Model> QuantClient::UploadModel(
    const std::string& path, int64_t size_bytes, const std::string& sha256,
    const std::function<void(int64_t)>& on_progress) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));

  v1::Model response;
  auto context = NewContext();
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
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

ErrorOrigin OriginOf(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return ErrorOrigin::kUnreachable;
  }
  return ErrorOrigin::kServer;
}

}  // namespace ptq::client
