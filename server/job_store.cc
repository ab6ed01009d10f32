#include "job_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "postgres_job_store.h"
#include "sqlite_job_store.h"

namespace ptq::server {

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    return SqliteJobStore::Open(spec.substr(kSqlite.size()));
  }
  if (absl::StartsWith(spec, "postgresql://") || absl::StartsWith(spec, "postgres://")) {
    return PostgresJobStore::Open(spec);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--store must be sqlite:PATH or a postgresql:// URL, got '", spec.substr(0, spec.find(':')), ":...'"));
}

}  // namespace ptq::server
