#ifndef PTQ_SERVER_GRPC_CALL_AUTHENTICATOR_H_
#define PTQ_SERVER_GRPC_CALL_AUTHENTICATOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/identity.h"
#include "auth/identity_table.h"

namespace ptq::server {

// Who each call is: the bearer token in its `authorization: Bearer TOKEN` metadata, else its
// mutual-TLS client certificate's subject, looked up in the --auth-token-file's identities
// (IdentityTable). A call that brings a token is judged by the token alone. Without a file
// the server checks no identity and every call is the anonymous admin of the default tenant.
// Thread-safe; Reload swaps the identities in while calls are being served.
class CallAuthenticator {
 public:
  // `identity_file` empty: no identities are checked. INVALID_ARGUMENT naming the file and the
  // line when it cannot be read or parsed.
  static absl::StatusOr<std::unique_ptr<CallAuthenticator>> Create(std::string identity_file);

  bool enabled() const { return !identity_file_.empty(); }
  // Reads the file again (token rotation): on any error the identities already loaded stay,
  // and the error says why. A no-op without a file.
  absl::Status Reload();

  // UNAUTHENTICATED when the call brings no credential the server knows (the message never
  // repeats a token).
  absl::StatusOr<Identity> Authenticate(const grpc::ServerContextBase& context) const;
  // Authenticate, then PERMISSION_DENIED when the caller's role is below `needed`.
  absl::StatusOr<Identity> Admit(const grpc::ServerContextBase& context, Role needed) const;

 private:
  explicit CallAuthenticator(std::string identity_file) : identity_file_(std::move(identity_file)) {}
  std::shared_ptr<const IdentityTable> identities() const;

  const std::string identity_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<const IdentityTable> identities_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_GRPC_CALL_AUTHENTICATOR_H_
