#ifndef PTQ_SERVER_JOB_STORE_H_
#define PTQ_SERVER_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ptq/v1/job.pb.h"

namespace ptq::server {

// Durable record of every job: one row per job holding the serialized v1::Job, keyed by a
// sequence number that orders jobs by submission. SqliteJobStore keeps it in a file for one
// server; PostgresJobStore in a database many servers share. Both create or upgrade their
// schema when opened (its version is stored with it) and are thread-safe.
class JobStore {
 public:
  struct Row {
    int64_t sequence = 0;
    v1::Job job;
  };

  virtual ~JobStore() = default;

  // Adds a new job and returns its sequence number (increasing with each insert). An error
  // when a job with its id is stored already.
  virtual absl::StatusOr<int64_t> Insert(const v1::Job& job) = 0;
  // Replaces the stored record of an existing job; NOT_FOUND when there is none.
  virtual absl::Status Update(const v1::Job& job) = 0;
  // Removes a job's record; NOT_FOUND when there is none.
  virtual absl::Status Delete(const std::string& job_id) = 0;
  // Every job, in submission order. DATA_LOSS when a row does not parse.
  virtual absl::StatusOr<std::vector<Row>> LoadAll() = 0;
  // Moves every row that does not parse as a v1::Job into the quarantined_jobs table (kept for
  // a person to inspect) and returns their sequence numbers; the rest load as before.
  virtual absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() = 0;
};

// The store `spec` names: "sqlite:PATH", or a PostgreSQL connection URL
// ("postgresql://..." or "postgres://..."). INVALID_ARGUMENT for any other form; the store's
// own error when it cannot be opened (a URL's password is never repeated).
absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec);

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_STORE_H_
