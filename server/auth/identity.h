#ifndef PTQ_SERVER_AUTH_IDENTITY_H_
#define PTQ_SERVER_AUTH_IDENTITY_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tenant_scope.h"

namespace ptq::server {

// What a caller may do within its tenant; each role may do everything the ones before it may.
enum class Role {
  kReader = 0,     // get, watch, list and download its tenant's jobs; get its models
  kSubmitter = 1,  // + upload models, submit, stream calibration data, evaluate, cancel
  kAdmin = 2,      // + the same on every tenant's jobs and models
};

absl::string_view RoleName(Role role);
// "reader", "submitter", "admin"; nullopt for anything else.
std::optional<Role> ParseRole(absl::string_view name);

// Who made a call, as the server's authentication established it.
struct Identity {
  // For logs: "token sha256:1a2b3c4d" (the start of the token's digest, never the token),
  // "subject CN=...", or "anonymous" when the server checks no identity.
  std::string who;
  std::string tenant = kDefaultTenant;
  Role role = Role::kReader;

  bool May(Role needed) const { return role >= needed; }
  TenantScope scope() const {
    return role == Role::kAdmin ? TenantScope{tenant, true} : TenantScope::Only(tenant);
  }
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_AUTH_IDENTITY_H_
