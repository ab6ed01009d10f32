#ifndef PTQ_SERVER_AUTH_IDENTITY_TABLE_H_
#define PTQ_SERVER_AUTH_IDENTITY_TABLE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/identity.h"

namespace ptq::server {

// The identities an --auth-token-file grants. One per line, `CREDENTIAL TENANT ROLE`, where
// CREDENTIAL is a bearer token (at least 16 characters, no spaces) or
// `subject=SUBJECT`, a mutual-TLS client certificate's subject as gRPC reports it
// (RFC 2253, e.g. `subject=CN=ci-bot,O=team-a`); blank lines and lines starting with '#' are
// skipped. Tenants are 1-64 characters of [a-z0-9._-] starting with a letter or digit; roles
// are reader, submitter, admin.
class IdentityTable {
 public:
  // INVALID_ARGUMENT naming the line number (never echoing a token) for a malformed line, a
  // bad tenant or role, a short token, or a credential given twice.
  static absl::StatusOr<IdentityTable> Parse(absl::string_view text);

  // The identity whose token `token` is. Every stored token is compared, each in constant
  // time on SHA-256 digests, so neither the position of a match nor how much of a token was
  // right shows in the time taken. The table keeps only the digests.
  std::optional<Identity> ForToken(absl::string_view token) const;
  std::optional<Identity> ForSubject(absl::string_view subject) const;

  int tokens() const { return static_cast<int>(tokens_.size()); }
  int subjects() const { return static_cast<int>(subjects_.size()); }

 private:
  struct TokenEntry {
    std::string digest;  // lowercase hex SHA-256 of the token
    Identity identity;
  };
  std::vector<TokenEntry> tokens_;
  std::map<std::string, Identity, std::less<>> subjects_;
};

// True for a tenant name IdentityTable accepts (also a safe file name).
bool IsValidTenant(absl::string_view tenant);

}  // namespace ptq::server

#endif  // PTQ_SERVER_AUTH_IDENTITY_TABLE_H_
