#ifndef PTQ_SERVER_GRPC_RPC_METRICS_H_
#define PTQ_SERVER_GRPC_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "absl/strings/string_view.h"
#include "metrics/service_metrics.h"

namespace ptq::server {

// The method label of a call to `full_method` ("/ptq.v1.QuantService/GetJob"): the method's
// name for QuantService's methods, "service/method" for gRPC's own services (health,
// reflection), "unknown" for anything else, so that a client cannot invent label values.
std::string RpcMethodLabel(absl::string_view full_method);

// Every call's method, status code and duration, and the bytes of uploaded models and streamed
// calibration batches, counted in ServiceMetrics. An interceptor, so each call is counted
// whichever reactor (or refusal) answered it.
class RpcMetricsFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsFactory(ServiceMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServiceMetrics* const metrics_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_RPC_METRICS_H_
