#ifndef PTQ_SERVER_GRPC_AUDIT_LOG_H_
#define PTQ_SERVER_GRPC_AUDIT_LOG_H_

#include <grpcpp/support/server_interceptor.h>

#include "grpc/call_authenticator.h"

namespace ptq::server {

// One structured log line ("audit ...", key=value pairs) for every call that changes or runs
// something (UploadModel, SubmitQuantJob, StreamCalibrationBatch, CancelJob, DeleteJob,
// DeleteModel, Evaluate) and for every call refused for its caller (UNAUTHENTICATED, PERMISSION_DENIED): who (never a token),
// tenant, role, the method, the job and model it named or made, the peer, and the status code.
// An interceptor, so each call gets its line whichever reactor answered it.
class AuditLogFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AuditLogFactory(const CallAuthenticator* authenticator) : authenticator_(authenticator) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  const CallAuthenticator* authenticator_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_AUDIT_LOG_H_
