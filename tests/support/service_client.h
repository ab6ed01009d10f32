#ifndef PTQ_TESTS_SUPPORT_SERVICE_CLIENT_H_
#define PTQ_TESTS_SUPPORT_SERVICE_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ptq/v1/service.grpc.pb.h"

namespace ptq::testing {

// Raw QuantService calls for tests and benchmarks, which need inputs and timings ptq-client
// does not give them (wrong shapes, half streams, concurrent pollers).
class ServiceClient {
 public:
  explicit ServiceClient(const std::string& address);

  v1::QuantService::Stub& stub() { return *stub_; }

  // Uploads a file with UploadModel.
  grpc::Status TryUpload(const std::filesystem::path& model, v1::Model* response);
  // Uploads a TorchScript file; returns its model id, or "" after ADD_FAILURE.
  std::string Upload(const std::filesystem::path& model);
  grpc::Status Submit(const v1::JobConfig& config, v1::Job* job, const std::string& idempotency_key = "");
  grpc::Status Get(const std::string& job_id, v1::Job* job);
  // Every message WatchJob sends until the stream ends (or `timeout`), in order.
  std::vector<v1::Job> Watch(const std::string& job_id, std::chrono::seconds timeout = std::chrono::seconds(300));
  // Polls GetJob until `done(job)` or `timeout`; returns the last job seen.
  v1::Job PollUntil(const std::string& job_id, const std::function<bool(const v1::Job&)>& done,
                    std::chrono::seconds timeout = std::chrono::seconds(300));
  // Sends `batches` then closes the stream; `cancel_after` >= 0 cancels the call after that
  // many batches instead of closing it.
  grpc::Status Stream(const std::vector<v1::CalibrationBatch>& batches, v1::CalibrationSummary* summary,
                      int cancel_after = -1);
  // Downloads one artifact; `header` gets the first message.
  grpc::Status Download(const std::string& job_id, const std::string& path, v1::Artifact* header,
                        std::string* bytes);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::QuantService::Stub> stub_;
};

// One UploadModel call on `stub`: the header for `bytes` (named `filename`), then the bytes in
// 1 MiB chunks.
grpc::Status UploadModelBytes(v1::QuantService::Stub& stub, grpc::ClientContext& context, const std::string& filename,
                              const std::string& bytes, v1::Model* response);

bool IsFinalState(v1::JobState state);

// Fashion-MNIST test images (Debian's t10k set) as binary PGM files, which the server decodes
// like any encoded image, and their labels.
struct EncodedImages {
  std::vector<std::string> images;
  std::vector<int32_t> labels;
};
EncodedImages FashionMnistAsPgm(int count);

// `count` batches of `batch_size` encoded images for job `job_id`, cycling through `images`.
std::vector<v1::CalibrationBatch> ImageBatches(const std::string& job_id, const EncodedImages& images, int count,
                                               int batch_size);

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_SERVICE_CLIENT_H_
