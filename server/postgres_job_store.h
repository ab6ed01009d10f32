#ifndef PTQ_SERVER_POSTGRES_JOB_STORE_H_
#define PTQ_SERVER_POSTGRES_JOB_STORE_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "job_store.h"

namespace ptq::server {

// The job store in a PostgreSQL database (libpqxx), which servers on many machines can share.
// One connection, used by one call at a time; a connection the database dropped makes that
// call UNAVAILABLE and the next one connects again (a write is never retried blindly: it may
// have committed). The connection holds an advisory lock: exclusively for a server of role
// all (the only one on the store), shared for the api and worker roles; a server that cannot
// get its kind fails FAILED_PRECONDITION. The schema's version is the ptq_schema table's;
// opening creates or upgrades the tables under an advisory lock, so replicas starting together
// do it once. Leases and change versions use the database's clock and transaction ids, never
// a server's clock.
class PostgresJobStore final : public JobStore {
 public:
  // UNAVAILABLE when the database cannot be reached, with libpq's reason (never the URL's
  // password); FAILED_PRECONDITION for a schema a newer ptq-server wrote.
  // `access` decides which lock the connection takes (StoreAccess); FAILED_PRECONDITION when
  // a server holding the other kind (or, for kExclusive, any server) uses the store.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& url, StoreAccess access);
  ~PostgresJobStore() override;

  absl::StatusOr<int64_t> Insert(const v1::Job& job) override;
  absl::StatusOr<std::optional<Row>> FindByIdempotencyKey(const std::string& tenant, const std::string& key) override;
  absl::Status Update(const v1::Job& job) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<std::vector<Row>> LoadAll() override;
  absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() override;
  absl::StatusOr<std::optional<Claim>> ClaimNext(const std::string& owner, std::chrono::milliseconds ttl) override;
  absl::StatusOr<bool> RenewLease(const Lease& lease, std::chrono::milliseconds ttl) override;
  absl::Status UpdateLeased(const Lease& lease, const v1::Job& job) override;
  absl::Status Finish(const Lease& lease, const v1::Job& job, const std::function<absl::Status()>& publish) override;
  absl::Status UpdateIfWaiting(const v1::Job& job) override;
  absl::Status RequestCancel(const std::string& job_id) override;
  absl::StatusOr<Changes> ChangesSince(int64_t version) override;

 private:
  // libpqxx's connection and transaction (a pqxx::work), kept out of this header.
  struct Connection;
  struct Transaction;

  PostgresJobStore(std::string url, StoreAccess access);

  // Runs `body` in one transaction (committed when it returns OK), turning libpqxx's
  // exceptions into statuses that start with `what`.
  absl::Status Transact(const char* what, const std::function<absl::Status(Transaction&)>& body);

  const std::string url_;
  const StoreAccess access_;
  std::mutex mutex_;
  std::unique_ptr<Connection> connection_;  // null after the database dropped it
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_POSTGRES_JOB_STORE_H_
