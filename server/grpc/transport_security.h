#ifndef PTQ_SERVER_GRPC_TRANSPORT_SECURITY_H_
#define PTQ_SERVER_GRPC_TRANSPORT_SECURITY_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server_options.h"

namespace ptq::server {

// The credentials for the listening port. INVALID_ARGUMENT naming the flags when they do not
// fit together (TLS or --insecure, one of them; cert and key together; a client CA only with
// TLS) or a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const TransportSecurity& security);

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_TRANSPORT_SECURITY_H_
