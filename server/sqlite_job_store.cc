#include "sqlite_job_store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace ptq::server {
namespace {

// Finalizes a prepared statement when it goes out of scope.
struct Statement {
  sqlite3_stmt* handle = nullptr;
  ~Statement() { sqlite3_finalize(handle); }
};

// Version 1 is the layout of the first releases, which stored no version (user_version 0):
// upgrading from it only records the version.
constexpr int kSchemaVersion = 1;

constexpr char kNotShared[] = "an SQLite job store is one server's: leases need a PostgreSQL store";

constexpr char kSchema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL UNIQUE,"
    "  job BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS quarantined_jobs ("
    "  sequence INTEGER PRIMARY KEY,"
    "  job_id TEXT NOT NULL,"
    "  job BLOB,"
    "  quarantined_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);";

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> SqliteJobStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::InternalError(absl::StrCat("cannot open job database '", path, "': ", message));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(db));
  // A second process on the same state directory waits for the lock instead of failing.
  sqlite3_busy_timeout(db, 5000);
  if (absl::Status migrated = store->Migrate(path); !migrated.ok()) return migrated;
  return store;
}

SqliteJobStore::~SqliteJobStore() { sqlite3_close(db_); }

absl::Status SqliteJobStore::Migrate(const std::string& path) {
  int version = -1;
  {
    Statement statement;
    if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &statement.handle, nullptr) != SQLITE_OK ||
        sqlite3_step(statement.handle) != SQLITE_ROW) {
      return Error(absl::StrCat("cannot read the schema version of job database '", path, "'").c_str());
    }
    version = sqlite3_column_int(statement.handle, 0);
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("job database '", path, "' has schema version ", version,
                                                      ", newer than this ptq-server's ", kSchemaVersion));
  }
  const std::string upgrade = absl::StrCat(kSchema, "PRAGMA user_version = ", kSchemaVersion, ";");
  if (sqlite3_exec(db_, upgrade.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error(absl::StrCat("cannot prepare job database '", path, "'").c_str());
  }
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Error(const char* what) const {
  return absl::InternalError(absl::StrCat(what, ": ", sqlite3_errmsg(db_)));
}

absl::StatusOr<int64_t> SqliteJobStore::Insert(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement;
  if (sqlite3_prepare_v2(db_, "INSERT INTO jobs (job_id, job) VALUES (?, ?)", -1, &statement.handle, nullptr) !=
      SQLITE_OK) {
    return Error("cannot insert job");
  }
  sqlite3_bind_text(statement.handle, 1, job.job_id().data(), static_cast<int>(job.job_id().size()), SQLITE_STATIC);
  sqlite3_bind_blob(statement.handle, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  if (sqlite3_step(statement.handle) != SQLITE_DONE) return Error("cannot insert job");
  return sqlite3_last_insert_rowid(db_);
}

absl::Status SqliteJobStore::Update(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement;
  if (sqlite3_prepare_v2(db_, "UPDATE jobs SET job = ? WHERE job_id = ?", -1, &statement.handle, nullptr) !=
      SQLITE_OK) {
    return Error("cannot update job");
  }
  sqlite3_bind_blob(statement.handle, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
  sqlite3_bind_text(statement.handle, 2, job.job_id().data(), static_cast<int>(job.job_id().size()), SQLITE_STATIC);
  if (sqlite3_step(statement.handle) != SQLITE_DONE) return Error("cannot update job");
  if (sqlite3_changes(db_) != 1) return absl::NotFoundError(absl::StrCat("job '", job.job_id(), "' is not stored"));
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Delete(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement;
  if (sqlite3_prepare_v2(db_, "DELETE FROM jobs WHERE job_id = ?", -1, &statement.handle, nullptr) != SQLITE_OK) {
    return Error("cannot delete job");
  }
  sqlite3_bind_text(statement.handle, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_STATIC);
  if (sqlite3_step(statement.handle) != SQLITE_DONE) return Error("cannot delete job");
  if (sqlite3_changes(db_) != 1) return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not stored"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<JobStore::Row>> SqliteJobStore::LoadAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement statement;
  if (sqlite3_prepare_v2(db_, "SELECT sequence, job FROM jobs ORDER BY sequence", -1, &statement.handle, nullptr) !=
      SQLITE_OK) {
    return Error("cannot read jobs");
  }
  std::vector<Row> rows;
  int step;
  while ((step = sqlite3_step(statement.handle)) == SQLITE_ROW) {
    Row row;
    row.sequence = sqlite3_column_int64(statement.handle, 0);
    const void* blob = sqlite3_column_blob(statement.handle, 1);
    const int size = sqlite3_column_bytes(statement.handle, 1);
    if (!row.job.ParseFromArray(blob, size)) {
      return absl::DataLossError(absl::StrCat("job row ", row.sequence, " of the job database does not parse"));
    }
    rows.push_back(std::move(row));
  }
  if (step != SQLITE_DONE) return Error("cannot read jobs");
  return rows;
}

absl::StatusOr<std::vector<int64_t>> SqliteJobStore::QuarantineUnreadableRows() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> unreadable;
  {
    Statement statement;
    if (sqlite3_prepare_v2(db_, "SELECT sequence, job FROM jobs", -1, &statement.handle, nullptr) != SQLITE_OK) {
      return Error("cannot read jobs");
    }
    int step;
    v1::Job job;
    while ((step = sqlite3_step(statement.handle)) == SQLITE_ROW) {
      const void* blob = sqlite3_column_blob(statement.handle, 1);
      const int size = sqlite3_column_bytes(statement.handle, 1);
      if (!job.ParseFromArray(blob, size)) unreadable.push_back(sqlite3_column_int64(statement.handle, 0));
    }
    if (step != SQLITE_DONE) return Error("cannot read jobs");
  }
  for (int64_t sequence : unreadable) {
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return Error("cannot quarantine job");
    bool moved = true;
    for (const char* sql : {"INSERT OR REPLACE INTO quarantined_jobs (sequence, job_id, job) "
                            "SELECT sequence, job_id, job FROM jobs WHERE sequence = ?",
                            "DELETE FROM jobs WHERE sequence = ?"}) {
      Statement statement;
      moved = moved && sqlite3_prepare_v2(db_, sql, -1, &statement.handle, nullptr) == SQLITE_OK &&
              sqlite3_bind_int64(statement.handle, 1, sequence) == SQLITE_OK &&
              sqlite3_step(statement.handle) == SQLITE_DONE;
    }
    if (!moved) {
      const absl::Status error = Error("cannot quarantine job");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return error;
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return Error("cannot quarantine job");
  }
  return unreadable;
}

absl::StatusOr<std::optional<JobStore::Row>> SqliteJobStore::FindByIdempotencyKey(const std::string&,
                                                                                 const std::string&) {
  return absl::FailedPreconditionError(kNotShared);
}

absl::StatusOr<std::optional<JobStore::Claim>> SqliteJobStore::ClaimNext(const std::string&,
                                                                        std::chrono::milliseconds) {
  return absl::FailedPreconditionError(kNotShared);
}

absl::StatusOr<bool> SqliteJobStore::RenewLease(const Lease&, std::chrono::milliseconds) {
  return absl::FailedPreconditionError(kNotShared);
}

absl::Status SqliteJobStore::UpdateLeased(const Lease&, const v1::Job&) { return absl::FailedPreconditionError(kNotShared); }

absl::Status SqliteJobStore::Finish(const Lease&, const v1::Job&, const std::function<absl::Status()>&) {
  return absl::FailedPreconditionError(kNotShared);
}

absl::Status SqliteJobStore::UpdateIfWaiting(const v1::Job&) { return absl::FailedPreconditionError(kNotShared); }

absl::Status SqliteJobStore::RequestCancel(const std::string&) { return absl::FailedPreconditionError(kNotShared); }

absl::StatusOr<JobStore::Changes> SqliteJobStore::ChangesSince(int64_t) {
  return absl::FailedPreconditionError(kNotShared);
}

}  // namespace ptq::server
