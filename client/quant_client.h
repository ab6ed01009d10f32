#ifndef PTQ_CLIENT_QUANT_CLIENT_H_
#define PTQ_CLIENT_QUANT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
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

  QuantClient(const std::string& server_address, std::chrono::milliseconds timeout);

  // grpc.health.v1 Check for `service` ("" is the whole server): "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> CheckHealth(const std::string& service);

  absl::StatusOr<v1::Model> GetModel(const std::string& model_id);

  // Streams a local file whose size and sha256 the caller computed. `on_progress` gets the
  // bytes sent so far after each chunk.
  absl::StatusOr<v1::Model> UploadModel(const std::string& path, int64_t size_bytes,
                                        const std::string& sha256,
                                        const std::function<void(int64_t)>& on_progress);

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::QuantService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  std::chrono::milliseconds timeout_;
};

// kUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED, kServer for every other error.
ErrorOrigin OriginOf(const absl::Status& status);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_QUANT_CLIENT_H_
