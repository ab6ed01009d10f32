#ifndef PTQ_SERVER_TENANT_SCOPE_H_
#define PTQ_SERVER_TENANT_SCOPE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ptq::server {

// The tenant of callers when the server has no --auth-token-file, and of jobs and models
// stored before tenants existed.
inline constexpr char kDefaultTenant[] = "default";

// Whose jobs and models a caller sees: its own tenant's, or every tenant's (admins, and the
// server's own work). What it does not see does not exist for it: NOT_FOUND, as for an
// unknown id.
struct TenantScope {
  std::string tenant = kDefaultTenant;
  bool all_tenants = false;

  static TenantScope Only(std::string tenant) { return TenantScope{std::move(tenant), false}; }
  static TenantScope All() { return TenantScope{kDefaultTenant, true}; }
  bool Sees(absl::string_view owner) const { return all_tenants || owner == tenant; }
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_TENANT_SCOPE_H_
