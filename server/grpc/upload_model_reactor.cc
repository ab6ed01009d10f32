#include "grpc/upload_model_reactor.h"

#include "grpc/status_util.h"
#include "spdlog/spdlog.h"

namespace ptq::server {

UploadModelReactor::UploadModelReactor(const ModelStore* store, TaskPool* commit_pool, std::string tenant,
                                       v1::Model* response)
    : store_(store), commit_pool_(commit_pool), tenant_(std::move(tenant)), response_(response) {
  StartRead(&request_);
}

void UploadModelReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client closed its side of the stream, or the call was cancelled
    if (upload_ == nullptr) {
      FinishWithError(absl::InvalidArgumentError("upload stream ended before its header"));
      return;
    }
    CommitOnPool();
    return;
  }
  switch (request_.payload_case()) {
    case v1::UploadModelRequest::kHeader:
      OnHeader(request_.header());
      return;
    case v1::UploadModelRequest::kChunk:
      OnChunk(request_.chunk());
      return;
    default:
      FinishWithError(absl::InvalidArgumentError("upload message has neither header nor chunk"));
      return;
  }
}

void UploadModelReactor::OnHeader(const v1::UploadModelHeader& header) {
  if (upload_ != nullptr) {
    FinishWithError(absl::InvalidArgumentError("upload stream sent a second header"));
    return;
  }
  absl::StatusOr<std::unique_ptr<PendingUpload>> upload = store_->BeginUpload(
      UploadHeader{header.filename(), header.size_bytes(), header.sha256()}, tenant_);
  if (!upload.ok()) {
    FinishWithError(upload.status());
    return;
  }
  upload_ = *std::move(upload);
  StartRead(&request_);
}

void UploadModelReactor::OnChunk(const std::string& chunk) {
  if (upload_ == nullptr) {
    FinishWithError(absl::InvalidArgumentError("the first upload message must carry the header"));
    return;
  }
  if (absl::Status appended = upload_->Append(chunk); !appended.ok()) {
    FinishWithError(appended);
    return;
  }
  StartRead(&request_);
}

void UploadModelReactor::CommitOnPool() {
  commit_pool_->Post([this] {
    absl::StatusOr<v1::Model> model = upload_->Commit();
    upload_.reset();
    if (!model.ok()) {
      spdlog::warn("upload rejected: {}", std::string(model.status().message()));
      Finish(ToGrpcStatus(model.status()));
      return;
    }
    spdlog::info("model {} {} for tenant {} ({} bytes, '{}')", model->model_id(),
                 model->already_present() ? "uploaded again" : "stored", tenant_, model->size_bytes(),
                 model->filename());
    *response_ = *std::move(model);
    Finish(grpc::Status::OK);
  });
}

void UploadModelReactor::FinishWithError(const absl::Status& status) {
  upload_.reset();
  spdlog::warn("upload rejected: {}", std::string(status.message()));
  Finish(ToGrpcStatus(status));
}

void UploadModelReactor::OnDone() { delete this; }

}  // namespace ptq::server
