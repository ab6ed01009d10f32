#ifndef PTQ_SERVER_JOB_STORE_H_
#define PTQ_SERVER_JOB_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
//
// Leases (PostgreSQL only): the api and worker roles share one store. A worker claims a queued
// job with a lease it renews; every write it makes names the lease, and is refused once the
// lease has expired or another worker holds the job, so a worker that was paused or cut off
// can never overwrite what its successor did. Writes without a lease (the api's) are refused
// on a job a worker holds.
class JobStore {
 public:
  struct Row {
    int64_t sequence = 0;
    v1::Job job;
  };
  // A worker's hold on a job: `attempt` counts the claims of the job, so it fences out every
  // earlier holder.
  struct Lease {
    std::string job_id;
    std::string owner;
    int64_t attempt = 0;
  };
  struct Claim {
    Lease lease;
    v1::Job job;  // as stored when it was claimed
  };
  // Rows written since a change version (ChangesSince).
  struct Changes {
    std::vector<Row> rows;
    std::vector<std::string> deleted;  // ids of the jobs deleted since
    int64_t version = 0;               // pass it to the next call
  };

  virtual ~JobStore() = default;

  // Adds a new job and returns its sequence number (increasing with each insert). An error
  // when a job with its id is stored already; PostgreSQL: ALREADY_EXISTS, storing nothing,
  // when its tenant has a job with its idempotency key (an api replica made it).
  virtual absl::StatusOr<int64_t> Insert(const v1::Job& job) = 0;
  // The job `tenant` submitted with idempotency key `key`, if one is stored (PostgreSQL only).
  virtual absl::StatusOr<std::optional<Row>> FindByIdempotencyKey(const std::string& tenant,
                                                                  const std::string& key) = 0;
  // Replaces the stored record of an existing job; NOT_FOUND when there is none, ABORTED while
  // a worker holds it.
  virtual absl::Status Update(const v1::Job& job) = 0;
  // Removes a job's record; NOT_FOUND when there is none.
  virtual absl::Status Delete(const std::string& job_id) = 0;
  // Every job, in submission order. DATA_LOSS when a row does not parse.
  virtual absl::StatusOr<std::vector<Row>> LoadAll() = 0;
  // Moves every row that does not parse as a v1::Job into the quarantined_jobs table (kept for
  // a person to inspect) and returns their sequence numbers; the rest load as before.
  virtual absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() = 0;

  // The first job in submission order that is QUEUED and not held, or whose holder's lease
  // expired (its worker died or stalled), leased to `owner` for `ttl` with the next attempt
  // number; nullopt when there is none. Concurrent claimers never get the same job.
  virtual absl::StatusOr<std::optional<Claim>> ClaimNext(const std::string& owner, std::chrono::milliseconds ttl) = 0;
  // Extends the lease by `ttl` from now and says whether a cancel was requested. ABORTED once
  // the lease is lost (expired, or another worker claimed the job).
  virtual absl::StatusOr<bool> RenewLease(const Lease& lease, std::chrono::milliseconds ttl) = 0;
  // Replaces the record of a job held with `lease`; ABORTED once the lease is lost.
  virtual absl::Status UpdateLeased(const Lease& lease, const v1::Job& job) = 0;
  // The end of a leased run: with the job's row locked and the lease checked, runs `publish`
  // (which moves the run's result directory into place), then stores `job` and releases the
  // lease, all or nothing. ABORTED, without calling `publish`, once the lease is lost.
  virtual absl::Status Finish(const Lease& lease, const v1::Job& job, const std::function<absl::Status()>& publish) = 0;
  // Replaces the record of a job that is QUEUED or AWAITING_DATA and that no worker holds (the
  // api's changes: cancelled, queued, failed while waiting); ABORTED otherwise (a worker took
  // it, or it ended), NOT_FOUND when there is none.
  virtual absl::Status UpdateIfWaiting(const v1::Job& job) = 0;
  // Asks the worker holding the job to cancel it (it hears at its next renewal).
  virtual absl::Status RequestCancel(const std::string& job_id) = 0;
  // The jobs inserted or updated since the call that returned `version` (0: all), oldest
  // change first, and those deleted since (within kDeletionMemory); a job may come again
  // unchanged.
  virtual absl::StatusOr<Changes> ChangesSince(int64_t version) = 0;
};

// How long a shared store remembers a deleted job for ChangesSince: far longer than any api
// server goes between two reads, and a server that restarts loads what is stored.
inline constexpr std::chrono::hours kDeletionMemory{24};

// How a server shares its store: kExclusive (role all) is the only server on it; kShared (the
// api and worker roles) shares it with any number of api and worker servers, and with no
// kExclusive one.
enum class StoreAccess { kExclusive, kShared };

// The store `spec` names: "sqlite:PATH", or a PostgreSQL connection URL
// ("postgresql://..." or "postgres://..."). INVALID_ARGUMENT for any other form; the store's
// own error when it cannot be opened (a URL's password is never repeated).
// Copies every job of `from` into `to`, in submission order, and returns how many: how a
// single server's SQLite store moves to the PostgreSQL store the api and worker roles share.
// FAILED_PRECONDITION when `to` holds jobs already (nothing is copied); a row of `from` that
// does not parse is DATA_LOSS (QuarantineUnreadableRows first).
absl::StatusOr<int64_t> CopyJobs(JobStore& from, JobStore& to);

// kShared needs PostgreSQL (FAILED_PRECONDITION for SQLite, a file of one server).
absl::StatusOr<std::unique_ptr<JobStore>> OpenJobStore(const std::string& spec,
                                                       StoreAccess access = StoreAccess::kExclusive);

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_STORE_H_
