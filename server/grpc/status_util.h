#ifndef PTQ_SERVER_GRPC_STATUS_UTIL_H_
#define PTQ_SERVER_GRPC_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ptq::server {

// The one place where absl::Status becomes grpc::Status. The code numbers of the two are the
// same canonical codes, so the mapping keeps the code and the message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_STATUS_UTIL_H_
