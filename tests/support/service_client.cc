#include "service_client.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <thread>

#include "ptq/common/sha256.h"
#include "test_env.h"

namespace ptq::testing {
namespace {

std::chrono::system_clock::time_point In(std::chrono::seconds seconds) {
  return std::chrono::system_clock::now() + seconds;
}

std::string Gunzip(const std::filesystem::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  std::string bytes;
  if (file == nullptr) return bytes;
  char buffer[1 << 16];
  int read;
  while ((read = gzread(file, buffer, sizeof(buffer))) > 0) bytes.append(buffer, read);
  gzclose(file);
  return bytes;
}

}  // namespace

ServiceClient::ServiceClient(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  stub_ = v1::QuantService::NewStub(channel_);
}

grpc::Status ServiceClient::TryUpload(const std::filesystem::path& model, v1::Model* response) {
  const std::string bytes = ReadFileBytes(model);
  grpc::ClientContext context;
  context.set_deadline(In(std::chrono::seconds(60)));
  return UploadModelBytes(*stub_, context, model.filename().string(), bytes, response);
}

grpc::Status UploadModelBytes(v1::QuantService::Stub& stub, grpc::ClientContext& context, const std::string& filename,
                              const std::string& bytes, v1::Model* response) {
  auto writer = stub.UploadModel(&context, response);
  v1::UploadModelRequest message;
  message.mutable_header()->set_filename(filename);
  message.mutable_header()->set_size_bytes(static_cast<int64_t>(bytes.size()));
  message.mutable_header()->set_sha256(Sha256Hex(bytes));
  bool open = writer->Write(message);
  for (size_t offset = 0; open && offset < bytes.size(); offset += 1 << 20) {
    message.set_chunk(bytes.substr(offset, 1 << 20));
    open = writer->Write(message);
  }
  if (open) writer->WritesDone();
  return writer->Finish();
}

std::string ServiceClient::Upload(const std::filesystem::path& model) {
  v1::Model response;
  const grpc::Status status = TryUpload(model, &response);
  if (!status.ok()) {
    ADD_FAILURE() << "upload of " << model << " failed: " << status.error_message();
    return "";
  }
  return response.model_id();
}

grpc::Status ServiceClient::Submit(const v1::JobConfig& config, v1::Job* job, const std::string& idempotency_key) {
  grpc::ClientContext context;
  context.set_deadline(In(std::chrono::seconds(60)));
  v1::SubmitQuantJobRequest request;
  *request.mutable_config() = config;
  request.set_idempotency_key(idempotency_key);
  return stub_->SubmitQuantJob(&context, request, job);
}

grpc::Status ServiceClient::Get(const std::string& job_id, v1::Job* job) {
  grpc::ClientContext context;
  context.set_deadline(In(std::chrono::seconds(10)));
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  return stub_->GetJob(&context, request, job);
}

std::vector<v1::Job> ServiceClient::Watch(const std::string& job_id, std::chrono::seconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(In(timeout));
  v1::WatchJobRequest request;
  request.set_job_id(job_id);
  auto reader = stub_->WatchJob(&context, request);
  std::vector<v1::Job> seen;
  v1::Job job;
  while (reader->Read(&job)) seen.push_back(job);
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << "WatchJob: " << status.error_message();
  return seen;
}

v1::Job ServiceClient::PollUntil(const std::string& job_id, const std::function<bool(const v1::Job&)>& done,
                                 std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  v1::Job job;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Get(job_id, &job).ok() && done(job)) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << job_id << " did not reach the awaited state; last: " << job.ShortDebugString();
  return job;
}

grpc::Status ServiceClient::Stream(const std::vector<v1::CalibrationBatch>& batches,
                                   v1::CalibrationSummary* summary, int cancel_after) {
  grpc::ClientContext context;
  context.set_deadline(In(std::chrono::seconds(120)));
  auto writer = stub_->StreamCalibrationBatch(&context, summary);
  int sent = 0;
  for (const v1::CalibrationBatch& batch : batches) {
    if (sent == cancel_after) break;
    if (!writer->Write(batch)) break;
    ++sent;
  }
  if (sent == cancel_after) {
    context.TryCancel();
  } else {
    writer->WritesDone();
  }
  return writer->Finish();
}

grpc::Status ServiceClient::Download(const std::string& job_id, const std::string& path, v1::Artifact* header,
                                     std::string* bytes) {
  grpc::ClientContext context;
  context.set_deadline(In(std::chrono::seconds(60)));
  v1::DownloadArtifactRequest request;
  request.set_job_id(job_id);
  request.set_path(path);
  auto reader = stub_->DownloadArtifact(&context, request);
  v1::ArtifactChunk chunk;
  bytes->clear();
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) {
      *header = chunk.header();
    } else {
      bytes->append(chunk.data());
    }
  }
  return reader->Finish();
}

bool IsFinalState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

EncodedImages FashionMnistAsPgm(int count) {
  const std::string images = Gunzip(FashionMnistDir() / "t10k-images-idx3-ubyte.gz");
  const std::string labels = Gunzip(FashionMnistDir() / "t10k-labels-idx1-ubyte.gz");
  EncodedImages encoded;
  constexpr size_t kImageHeader = 16, kLabelHeader = 8, kPixels = 28 * 28;
  for (int i = 0; i < count && kImageHeader + (i + 1) * kPixels <= images.size(); ++i) {
    encoded.images.push_back("P5\n28 28\n255\n" + images.substr(kImageHeader + i * kPixels, kPixels));
    encoded.labels.push_back(static_cast<unsigned char>(labels[kLabelHeader + i]));
  }
  return encoded;
}

std::vector<v1::CalibrationBatch> ImageBatches(const std::string& job_id, const EncodedImages& images, int count,
                                               int batch_size) {
  std::vector<v1::CalibrationBatch> batches(count);
  size_t next = 0;
  for (v1::CalibrationBatch& batch : batches) {
    batch.set_job_id(job_id);
    for (int i = 0; i < batch_size; ++i, next = (next + 1) % images.images.size()) {
      batch.mutable_images()->add_images(images.images[next]);
      batch.add_labels(images.labels[next]);
    }
  }
  return batches;
}

}  // namespace ptq::testing
