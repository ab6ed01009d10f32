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
// have committed). One server per store: the connection holds an advisory lock, and a second
// server's store fails FAILED_PRECONDITION. The schema's version is the ptq_schema table's; opening creates or upgrades
// the tables under an advisory lock, so replicas starting together do it once.
class PostgresJobStore final : public JobStore {
 public:
  // UNAVAILABLE when the database cannot be reached, with libpq's reason (never the URL's
  // password); FAILED_PRECONDITION for a schema a newer ptq-server wrote.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& url);
  ~PostgresJobStore() override;

  absl::StatusOr<int64_t> Insert(const v1::Job& job) override;
  absl::Status Update(const v1::Job& job) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<std::vector<Row>> LoadAll() override;
  absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() override;

 private:
  // libpqxx's connection and transaction (a pqxx::work), kept out of this header.
  struct Connection;
  struct Transaction;

  explicit PostgresJobStore(std::string url);

  // Runs `body` in one transaction (committed when it returns OK), turning libpqxx's
  // exceptions into statuses that start with `what`.
  absl::Status Transact(const char* what, const std::function<absl::Status(Transaction&)>& body);

  const std::string url_;
  std::mutex mutex_;
  std::unique_ptr<Connection> connection_;  // null after the database dropped it
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_POSTGRES_JOB_STORE_H_
