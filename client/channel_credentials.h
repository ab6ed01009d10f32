#ifndef PTQ_CLIENT_CHANNEL_CREDENTIALS_H_
#define PTQ_CLIENT_CHANNEL_CREDENTIALS_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ptq::client {

// The client's side of TLS, from --tls-ca, --tls-cert, --tls-key (or PTQ_TLS_*).
struct ClientTls {
  std::string ca_file;    // CA that signed the server's certificate; empty: the system's roots
  std::string cert_file;  // the client's certificate, for servers that require one (mutual TLS)
  std::string key_file;
};

// Plaintext when no file is given (servers started with --insecure); TLS when any is.
// INVALID_ARGUMENT naming the flag when a file cannot be read, or when --tls-cert and
// --tls-key do not come together.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(const ClientTls& tls);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_CHANNEL_CREDENTIALS_H_
