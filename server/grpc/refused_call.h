#ifndef PTQ_SERVER_GRPC_REFUSED_CALL_H_
#define PTQ_SERVER_GRPC_REFUSED_CALL_H_

#include <grpcpp/grpcpp.h>

namespace ptq::server {

// A client-streaming call refused before its first message (its caller was not admitted):
// ends with `status` at once, reading nothing. Deletes itself in OnDone.
template <typename Request>
class RefusedRead : public grpc::ServerReadReactor<Request> {
 public:
  explicit RefusedRead(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// The same for a server-streaming call: ends with `status`, writing nothing.
template <typename Response>
class RefusedWrite : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWrite(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_REFUSED_CALL_H_
