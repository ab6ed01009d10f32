#ifndef PTQ_SERVER_GRPC_CLIENT_VISIBLE_STATUS_H_
#define PTQ_SERVER_GRPC_CLIENT_VISIBLE_STATUS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "client_visible_paths.h"

namespace ptq::server {

// Rewrites the message of every error status the server sends with ClientVisiblePaths,
// whichever handler, reactor or library made it: one place, so no RPC sends a server path.
class ClientVisibleStatusFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ClientVisibleStatusFactory(ClientVisiblePaths paths);
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<const ClientVisiblePaths> paths_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_CLIENT_VISIBLE_STATUS_H_
