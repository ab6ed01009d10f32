#ifndef PTQ_SERVER_SQLITE_JOB_STORE_H_
#define PTQ_SERVER_SQLITE_JOB_STORE_H_

#include <memory>
#include <mutex>
#include <string>

#include "job_store.h"

struct sqlite3;

namespace ptq::server {

// The job store of one server: an SQLite file (under the state directory by default). Writes
// go through SQLite's write-ahead log, so a killed process loses no committed change. The
// schema's version is SQLite's user_version.
class SqliteJobStore final : public JobStore {
 public:
  // Opens (creating if needed) `path`. INTERNAL with SQLite's message when it cannot;
  // FAILED_PRECONDITION for a file a newer ptq-server wrote.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~SqliteJobStore() override;
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;

  absl::StatusOr<int64_t> Insert(const v1::Job& job) override;
  absl::Status Update(const v1::Job& job) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<std::vector<Row>> LoadAll() override;
  absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() override;
  // Leases and change feeds serve the api and worker roles, which need a store that servers
  // share: FAILED_PRECONDITION here.
  absl::StatusOr<std::optional<Row>> FindByIdempotencyKey(const std::string& tenant, const std::string& key) override;
  absl::StatusOr<std::optional<Claim>> ClaimNext(const std::string& owner, std::chrono::milliseconds ttl) override;
  absl::StatusOr<bool> RenewLease(const Lease& lease, std::chrono::milliseconds ttl) override;
  absl::Status UpdateLeased(const Lease& lease, const v1::Job& job) override;
  absl::Status Finish(const Lease& lease, const v1::Job& job, const std::function<absl::Status()>& publish) override;
  absl::Status UpdateIfWaiting(const v1::Job& job) override;
  absl::Status RequestCancel(const std::string& job_id) override;
  absl::StatusOr<Changes> ChangesSince(int64_t version) override;

 private:
  explicit SqliteJobStore(sqlite3* db) : db_(db) {}
  // Creates the tables, or upgrades those of an older version.
  absl::Status Migrate(const std::string& path);
  absl::Status Error(const char* what) const;

  std::mutex mutex_;
  sqlite3* db_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_SQLITE_JOB_STORE_H_
