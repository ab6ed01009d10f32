#ifndef PTQ_SERVER_JOB_STORE_H_
#define PTQ_SERVER_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ptq/v1/job.pb.h"

struct sqlite3;

namespace ptq::server {

// Durable record of every job: one SQLite table under the state directory, one row per job
// holding the serialized v1::Job, keyed by a sequence number that orders jobs by submission.
// Writes go through SQLite's write-ahead log, so a killed process loses no committed change.
// Thread-safe.
class JobStore {
 public:
  struct Row {
    int64_t sequence = 0;
    v1::Job job;
  };

  // Opens (creating if needed) `path`. INTERNAL with SQLite's message when it cannot.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Adds a new job and returns its sequence number (increasing with each insert).
  absl::StatusOr<int64_t> Insert(const v1::Job& job);
  // Replaces the stored record of an existing job.
  absl::Status Update(const v1::Job& job);
  // Every job, in submission order. DATA_LOSS when a row does not parse.
  absl::StatusOr<std::vector<Row>> LoadAll();
  // Moves every row that does not parse as a v1::Job into the quarantined_jobs table (kept for
  // a person to inspect) and returns their sequence numbers; the rest load as before.
  absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows();

 private:
  explicit JobStore(sqlite3* db) : db_(db) {}
  absl::Status Error(const char* what) const;

  std::mutex mutex_;
  sqlite3* db_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_STORE_H_
