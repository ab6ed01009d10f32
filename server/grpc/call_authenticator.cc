#include "grpc/call_authenticator.h"

#include <grpc/grpc_security_constants.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace {

constexpr absl::string_view kBearerPrefix = "Bearer ";

absl::StatusOr<std::shared_ptr<const IdentityTable>> ReadIdentityFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--auth-token-file '", path, "' cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<IdentityTable> table = IdentityTable::Parse(text.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-token-file '", path, "' ", table.status().message()));
  }
  struct stat info = {};
  if (stat(path.c_str(), &info) == 0 && (info.st_mode & S_IRWXO) != 0) {
    spdlog::warn("--auth-token-file '{}' is open to every user of this machine (chmod o-rwx it)", path);
  }
  spdlog::info("identities loaded from '{}': {} tokens, {} certificate subjects", path, table->tokens(),
               table->subjects());
  return std::make_shared<const IdentityTable>(*std::move(table));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CallAuthenticator>> CallAuthenticator::Create(std::string identity_file) {
  auto authenticator = std::unique_ptr<CallAuthenticator>(new CallAuthenticator(std::move(identity_file)));
  if (absl::Status loaded = authenticator->Reload(); !loaded.ok()) return loaded;
  return authenticator;
}

absl::Status CallAuthenticator::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<const IdentityTable>> table = ReadIdentityFile(identity_file_);
  if (!table.ok()) return table.status();
  std::lock_guard<std::mutex> lock(mutex_);
  identities_ = *std::move(table);
  return absl::OkStatus();
}

std::shared_ptr<const IdentityTable> CallAuthenticator::identities() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return identities_;
}

absl::StatusOr<Identity> CallAuthenticator::Authenticate(const grpc::ServerContextBase& context) const {
  if (!enabled()) return Identity{"anonymous", kDefaultTenant, Role::kAdmin};
  const std::shared_ptr<const IdentityTable> table = identities();
  const auto& metadata = context.client_metadata();
  if (auto header = metadata.find("authorization"); header != metadata.end()) {
    const absl::string_view value(header->second.data(), header->second.size());
    if (!absl::StartsWith(value, kBearerPrefix)) {
      return absl::UnauthenticatedError("the authorization metadata must be `Bearer TOKEN`");
    }
    std::optional<Identity> identity = table->ForToken(value.substr(kBearerPrefix.size()));
    if (!identity.has_value()) return absl::UnauthenticatedError("the bearer token is not one this server accepts");
    return *std::move(identity);
  }
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  const std::vector<grpc::string_ref> subjects =
      auth == nullptr ? std::vector<grpc::string_ref>() : auth->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (!subjects.empty()) {
    const absl::string_view subject(subjects.front().data(), subjects.front().size());
    std::optional<Identity> identity = table->ForSubject(subject);
    if (!identity.has_value()) {
      return absl::UnauthenticatedError(
          absl::StrCat("the client certificate's subject '", subject, "' has no identity on this server"));
    }
    return *std::move(identity);
  }
  return absl::UnauthenticatedError(
      "this server needs a bearer token (ptq-client --token, or PTQ_TOKEN) or a client certificate it knows");
}

absl::StatusOr<Identity> CallAuthenticator::Admit(const grpc::ServerContextBase& context, Role needed) const {
  absl::StatusOr<Identity> identity = Authenticate(context);
  if (!identity.ok() || identity->May(needed)) return identity;
  return absl::PermissionDeniedError(absl::StrCat("this call needs the ", RoleName(needed), " role; ",
                                                  identity->who, " has ", RoleName(identity->role)));
}

}  // namespace ptq::server
