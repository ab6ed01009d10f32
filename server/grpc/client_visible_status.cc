#include "grpc/client_visible_status.h"

#include <grpcpp/support/interceptor.h>

#include <utility>

namespace ptq::server {
namespace {

class RewriteErrorStatus : public grpc::experimental::Interceptor {
 public:
  explicit RewriteErrorStatus(std::shared_ptr<const ClientVisiblePaths> paths) : paths_(std::move(paths)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok()) {
        methods->ModifySendStatus(
            grpc::Status(status.error_code(), paths_->Rewrite(status.error_message()), status.error_details()));
      }
    }
    methods->Proceed();
  }

 private:
  std::shared_ptr<const ClientVisiblePaths> paths_;
};

}  // namespace

ClientVisibleStatusFactory::ClientVisibleStatusFactory(ClientVisiblePaths paths)
    : paths_(std::make_shared<const ClientVisiblePaths>(std::move(paths))) {}

grpc::experimental::Interceptor* ClientVisibleStatusFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo*) {
  return new RewriteErrorStatus(paths_);
}

}  // namespace ptq::server
