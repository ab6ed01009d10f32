#ifndef PTQ_SERVER_LISTEN_ADDRESS_H_
#define PTQ_SERVER_LISTEN_ADDRESS_H_

#include "absl/strings/string_view.h"

namespace ptq::server {

// Whether a gRPC listen address ("host:port", "[v6]:port", "unix:path") reaches this machine
// only: 127.0.0.0/8, ::1, localhost or a unix socket. 0.0.0.0, [::] and every other host
// reach the network.
bool IsLoopbackOnly(absl::string_view address);

}  // namespace ptq::server

#endif  // PTQ_SERVER_LISTEN_ADDRESS_H_
