#ifndef PTQ_SERVER_JOB_REGISTRY_H_
#define PTQ_SERVER_JOB_REGISTRY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "job_store.h"
#include "ptq/v1/service.pb.h"
#include "tenant_scope.h"

namespace ptq::server {

// The jobs as clients see them: one v1::Job per job, in memory for reads and in the JobStore
// for restarts, and the watchers that follow them. A change is stored before any watcher
// hears of it. Thread-safe; callers that hold a lock of their own take it before this one.
//
// Writers: a job that is not running changes under its owner's lock (JobManager); a running
// job changes only on the thread that runs it (its states and its progress). That is what
// lets ReportProgress store outside the lock: no later change of the same job can be stored
// before it.
class JobRegistry {
 public:
  using Listener = std::function<void(const v1::Job&)>;

  // Progress is stored at most once per `progress_store_interval` per job (and at the last
  // step); watchers hear every step.
  JobRegistry(JobStore* store, std::chrono::milliseconds progress_store_interval);

  // Reads the stored jobs, in submission order, after moving rows that do not parse to the
  // store's quarantine (logged); jobs stored before tenants existed are the default tenant's.
  // Call once, before anything else.
  absl::StatusOr<std::vector<v1::Job>> Load();

  // Stores a new job and returns it as filed. When the store holds a job of the same tenant
  // and idempotency key already (another api server stored it: JobStore::Insert's
  // ALREADY_EXISTS), stores nothing and returns that job instead, filed here too. The error of
  // the store when it cannot.
  absl::StatusOr<v1::Job> Add(const v1::Job& job);
  // Forgets a job and removes its stored record (the store's error, forgetting nothing, when
  // it cannot; NOT_FOUND, forgotten, when another server removed it first); its watchers are
  // dropped.
  absl::Status Remove(const std::string& job_id);
  // Forgets a job another server removed (JobStore::Changes::deleted), as Remove does, without
  // the store. Nothing for a job it does not know.
  void Forget(const std::string& job_id);
  // The jobs in final states, oldest finished first, then first submitted (for retention).
  std::vector<v1::Job> EndedOldestFirst() const;
  // NOT_FOUND naming the job when there is none.
  absl::StatusOr<v1::Job> Get(const std::string& job_id) const;
  // As Get, and the same NOT_FOUND for a job `scope` does not see: no caller learns that
  // another tenant's job exists.
  absl::StatusOr<v1::Job> GetVisible(const std::string& job_id, const TenantScope& scope) const;
  // Idempotency keys are the tenant's own: another tenant's key never finds this tenant's job.
  std::optional<v1::Job> FindByIdempotencyKey(const std::string& tenant, const std::string& key) const;
  // Newest first, `page_size` jobs (or fewer, to keep a page under 1 MiB) that `scope` sees,
  // filtered by state.
  // INVALID_ARGUMENT for a page size out of [0, 500] or a token ListJobs did not give.
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request, const TenantScope& scope) const;
  int CountInStates(std::initializer_list<v1::JobState> states) const;

  // Applies `change` to the existing job `job_id`, stamps updated_at, stores it (a store error
  // is logged: the change stays in memory) and then tells the watchers. Returns the job as
  // changed.
  v1::Job Change(const std::string& job_id, const std::function<void(v1::Job&)>& change);
  // Change for a job that waits (QUEUED or AWAITING_DATA) and that servers share with workers
  // (the api role): stored first, with JobStore::UpdateIfWaiting, and changed here and told to
  // the watchers only once stored. The store's error otherwise (ABORTED: a worker took it).
  absl::StatusOr<v1::Job> ChangeIfWaiting(const std::string& job_id, const std::function<void(v1::Job&)>& change);
  // Takes the stored rows other servers wrote (JobStore::ChangesSince) as they are, without
  // storing them: new jobs are added, changed ones replaced and told to their watchers. A job
  // that ended here stays ended (a change read before it ended may come after).
  void Refresh(const std::vector<JobStore::Row>& rows);
  // Progress within the job's state, from the thread that runs the job.
  void ReportProgress(const std::string& job_id, int64_t done, int64_t total);

  // Calls `listener` with the job now and after every change, until Unwatch. Listeners run
  // with the registry's lock held: they must not call back into it or into the JobManager.
  absl::StatusOr<int64_t> Watch(const std::string& job_id, Listener listener);
  void Unwatch(int64_t watch_id);

 private:
  struct Entry {
    int64_t sequence = 0;
    v1::Job job;
    std::optional<std::chrono::steady_clock::time_point> progress_stored_at;
  };
  // Files a stored job in memory (by id, sequence and idempotency key); a job stored before
  // tenants existed is the default tenant's. Returns it as filed.
  const v1::Job& FileLocked(int64_t sequence, v1::Job job);
  void ForgetLocked(std::map<std::string, Entry>::iterator entry);
  void StoreUpdate(const v1::Job& job) const;
  void NotifyLocked(const v1::Job& job) const;

  JobStore* const store_;
  const std::chrono::milliseconds progress_store_interval_;

  mutable std::mutex mutex_;
  std::map<std::string, Entry> jobs_;
  std::map<int64_t, std::string> job_by_sequence_;
  std::map<std::string, std::string> job_by_idempotency_key_;
  std::multimap<std::string, std::pair<int64_t, Listener>> listeners_;
  int64_t next_watch_id_ = 1;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_REGISTRY_H_
