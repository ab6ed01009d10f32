#include "job_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "postgres_job_store.h"
#include "sqlite_job_store.h"

namespace ptq::server {

absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec, StoreAccess access) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (absl::StartsWith(spec, kSqlite) && spec.size() > kSqlite.size()) {
    if (access == StoreAccess::kShared) {
      return absl::FailedPreconditionError(
          "the api and worker roles share a PostgreSQL job store: --store must be a postgresql:// URL");
    }
    return SqliteJobStore::Open(spec.substr(kSqlite.size()));
  }
  if (absl::StartsWith(spec, "postgresql://") || absl::StartsWith(spec, "postgres://")) {
    return PostgresJobStore::Open(spec, access);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--store must be sqlite:PATH or a postgresql:// URL, got '", spec.substr(0, spec.find(':')), ":...'"));
}

absl::StatusOr<int64_t> CopyJobs(JobStore& from, JobStore& to) {
  absl::StatusOr<std::vector<JobStore::Row>> existing = to.LoadAll();
  if (!existing.ok()) return existing.status();
  if (!existing->empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the store to copy jobs into holds ", existing->size(), " jobs already"));
  }
  absl::StatusOr<std::vector<JobStore::Row>> rows = from.LoadAll();
  if (!rows.ok()) return rows.status();
  for (const JobStore::Row& row : *rows) {
    if (absl::StatusOr<int64_t> inserted = to.Insert(row.job); !inserted.ok()) {
      return absl::Status(inserted.status().code(),
                          absl::StrCat("job ", row.job.job_id(), ": ", inserted.status().message()));
    }
  }
  return static_cast<int64_t>(rows->size());
}

}  // namespace ptq::server
