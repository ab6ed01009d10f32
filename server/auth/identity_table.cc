#include "auth/identity_table.h"

#include <openssl/crypto.h>

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ptq/common/sha256.h"

namespace ptq::server {
namespace {

constexpr absl::string_view kSubjectPrefix = "subject=";
constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTenantLength = 64;

}  // namespace

bool IsValidTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > kMaxTenantLength || !absl::ascii_isalnum(tenant[0])) return false;
  for (char c : tenant) {
    const bool allowed = absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z') || c == '.' || c == '_' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

absl::StatusOr<IdentityTable> IdentityTable::Parse(absl::string_view text) {
  IdentityTable table;
  std::set<std::string> digests;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": expected `CREDENTIAL TENANT ROLE`, got ",
                                                     fields.size(), " fields"));
    }
    Identity identity;
    identity.tenant = std::string(fields[1]);
    if (!IsValidTenant(identity.tenant)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": tenant '", identity.tenant,
          "' must be 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"));
    }
    std::optional<Role> role = ParseRole(fields[2]);
    if (!role.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": role '", fields[2], "' is not reader, submitter or admin"));
    }
    identity.role = *role;
    if (absl::StartsWith(fields[0], kSubjectPrefix)) {
      const std::string subject(fields[0].substr(kSubjectPrefix.size()));
      if (subject.empty()) return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": empty subject"));
      identity.who = absl::StrCat("subject ", subject);
      if (!table.subjects_.emplace(subject, identity).second) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": subject '", subject, "' given twice"));
      }
      continue;
    }
    if (fields[0].size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": tokens must be at least ",
                                                     kMinTokenLength, " characters long"));
    }
    std::string digest = Sha256Hex(fields[0]);
    if (!digests.insert(digest).second) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": this token is given twice"));
    }
    identity.who = absl::StrCat("token sha256:", digest.substr(0, 8));
    table.tokens_.push_back(TokenEntry{std::move(digest), std::move(identity)});
  }
  return table;
}

std::optional<Identity> IdentityTable::ForToken(absl::string_view token) const {
  const std::string digest = Sha256Hex(token);
  const TokenEntry* match = nullptr;
  for (const TokenEntry& entry : tokens_) {
    // Digests are all 64 characters: the comparison's time depends on neither content.
    if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return match->identity;
}

std::optional<Identity> IdentityTable::ForSubject(absl::string_view subject) const {
  auto found = subjects_.find(subject);
  if (found == subjects_.end()) return std::nullopt;
  return found->second;
}

}  // namespace ptq::server
