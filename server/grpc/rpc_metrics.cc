#include "grpc/rpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/interceptor.h>

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "ptq/v1/service.grpc.pb.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(ServiceMetrics* metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), method_(RpcMethodLabel(info->method())), start_(std::chrono::steady_clock::now()) {
    if (method_ == "UploadModel") bytes_kind_ = "model_upload";
    if (method_ == "StreamCalibrationBatch") bytes_kind_ = "calibration_stream";
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (bytes_kind_ != nullptr && methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // Null for a read that failed (the end of the client's stream). Every request of these
      // two methods is a protobuf message.
      if (const void* message = methods->GetRecvMessage(); message != nullptr) {
        metrics_->BytesReceived(
            bytes_kind_,
            static_cast<int64_t>(static_cast<const google::protobuf::MessageLite*>(message)->ByteSizeLong()));
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
      metrics_->RpcHandled(method_, absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                           elapsed.count());
    }
    methods->Proceed();
  }

 private:
  ServiceMetrics* const metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
  const char* bytes_kind_ = nullptr;
};

}  // namespace

std::string RpcMethodLabel(absl::string_view full_method) {
  absl::string_view path = absl::StripPrefix(full_method, "/");
  const size_t slash = path.find('/');
  if (slash == absl::string_view::npos) return "unknown";
  const absl::string_view service = path.substr(0, slash);
  const absl::string_view method = path.substr(slash + 1);
  if (service == v1::QuantService::service_full_name()) {
    const google::protobuf::ServiceDescriptor* ours =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(v1::QuantService::service_full_name());
    return ours != nullptr && ours->FindMethodByName(std::string(method)) != nullptr ? std::string(method) : "unknown";
  }
  if (service == "grpc.health.v1.Health" && (method == "Check" || method == "Watch")) return std::string(path);
  if (absl::StartsWith(service, "grpc.reflection.") && method == "ServerReflectionInfo") return std::string(path);
  return "unknown";
}

grpc::experimental::Interceptor* RpcMetricsFactory::CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(metrics_, info);
}

}  // namespace ptq::server
