#ifndef PTQ_SERVER_JOB_MANAGER_H_
#define PTQ_SERVER_JOB_MANAGER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_visible_paths.h"
#include "job_config.h"
#include "job_evaluations.h"
#include "job_logs.h"
#include "job_registry.h"
#include "job_store.h"
#include "metrics/service_metrics.h"
#include "model_store.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "ptq/v1/service.pb.h"
#include "tenant_scope.h"
#include "work_queue.h"

namespace ptq::server {

struct JobManagerOptions {
  std::filesystem::path results_dir;  // <state dir>/results
  // A stream job's complete calibration data is spooled here (<job>.spool) until the job ends,
  // so that a restart runs it again instead of failing it.
  std::filesystem::path streams_dir;  // <state dir>/streams
  std::string data_root;
  // One worker per entry, each running jobs on that device ("cpu", "cuda:0", ...).
  std::vector<std::string> worker_devices = {"cpu"};
  int max_queue = 64;  // jobs waiting (QUEUED or AWAITING_DATA) beyond which Submit refuses
  // Calibrated sessions kept in memory so Evaluate can run the simulated int8 model of recent
  // jobs; older jobs offer fp32 and int8 (from their files) only.
  int cached_sessions = 4;
  std::chrono::seconds awaiting_data_ttl{3600};
  std::chrono::seconds stream_idle_timeout{120};
  // Decoded calibration data all stream jobs together may hold in memory.
  int64_t max_stream_bytes = int64_t{4096} << 20;
  // Workers run at this nice value (0..19): when jobs keep every core busy, the kernel still
  // runs the threads that answer RPCs first (bench/results/server_rpc.md).
  int worker_nice = 10;
  // Retention, checked every few seconds: ended jobs finished longer ago than this are deleted
  // (0: kept), and while the result directories together hold more than max_results_bytes the
  // jobs that finished first are (0: no limit).
  std::chrono::seconds retention_age{0};
  int64_t max_results_bytes = 0;
  // False for the api role: jobs wait in the shared store for the worker role's servers
  // (JobWorker), which this server follows by reading the store's changes every
  // `store_poll`; its own workers run evaluations only. Needs a store opened kShared.
  bool run_jobs = true;
  std::chrono::milliseconds store_poll{500};
};

// What a StreamCalibrationBatch call must deliver for one job.
struct StreamExpectation {
  core::PreprocessSpec preprocess;
  int batches = 0;
  int max_batch_size = 0;
};

// The job domain's front: submissions checked and recorded (JobRegistry, which also serves
// reads and watchers), the jobs that have not ended yet (config as resolved, cancel flag,
// calibration stream), their runs, which it hands to a WorkQueue (evaluations go there too,
// through JobEvaluations), restart recovery and the reaper. Thread-safe.
class JobManager {
 public:
  using Listener = JobRegistry::Listener;
  using EvaluateProgress = std::function<void(int64_t done, int64_t total)>;
  using EvaluateDone = std::function<void(absl::StatusOr<v1::Metrics>)>;

  // Loads the stored jobs and recovers the ones a stop interrupted: server-source jobs go back
  // to the queue; jobs whose streamed data was in memory fail with the reason. Then starts
  // the workers. Job runs are counted and timed in `metrics`.
  // A deleted job's log goes from `job_logs`.
  static absl::StatusOr<std::unique_ptr<JobManager>> Start(JobManagerOptions options, JobStore* store,
                                                           const ModelStore* models, ServiceMetrics* metrics,
                                                           JobLogs* job_logs);
  ~JobManager();  // Stop()s

  // Every call naming a job or a model takes the caller's TenantScope: what it does not see
  // is NOT_FOUND, worded as for an unknown id.
  //
  // Validates the config (fills its defaults), checks the model (one `caller` sees) and the
  // datasets, stores the job as the caller's tenant's and queues it (server source) or waits
  // for its data (stream source). Blocking: opens the datasets. The same non-empty
  // idempotency key from the same tenant returns the job it created before. `validate_only`
  // stops after the checks (the model may be absent) and stores nothing.
  absl::StatusOr<v1::Job> Submit(v1::JobConfig config, const std::string& idempotency_key, bool validate_only,
                                 const TenantScope& caller);
  absl::StatusOr<v1::Job> Get(const std::string& job_id, const TenantScope& scope) const;
  absl::StatusOr<v1::ListJobsResponse> List(const v1::ListJobsRequest& request, const TenantScope& scope) const;
  // Queued or waiting jobs end CANCELLED at once; a running job is told to stop and ends
  // CANCELLED within a batch, its partial output removed. FAILED_PRECONDITION when final.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id, const TenantScope& scope);

  // Removes an ended job: its record, result directory, log and kept session.
  // FAILED_PRECONDITION while it has not ended or an evaluation of it is queued or running.
  absl::Status Delete(const std::string& job_id, const TenantScope& scope);
  // Takes the model from `scope` (ModelStore::Delete) unless a job that has not ended or an
  // evaluation queued or running uses it (FAILED_PRECONDITION naming one). Submissions wait
  // for it, so none can start using the model in between. True when its file was removed.
  absl::StatusOr<bool> DeleteModel(const std::string& model_id, const TenantScope& scope);

  // Calls `listener` with the job now and after every change, until Unwatch. Listeners run
  // with the registry's lock held: they must not call back into the manager.
  absl::StatusOr<int64_t> Watch(const std::string& job_id, const TenantScope& scope, Listener listener);
  void Unwatch(int64_t watch_id);

  // Claims the job's calibration stream. NOT_FOUND, FAILED_PRECONDITION when the job is not
  // in AWAITING_DATA, ABORTED when another stream for it is in progress. `context` is the
  // stream's call: cancelled when the stream sends nothing for stream_idle_timeout (see
  // NoteStreamActivity); it must outlive the claim.
  absl::StatusOr<StreamExpectation> BeginCalibrationStream(const std::string& job_id, const TenantScope& scope,
                                                           grpc::CallbackServerContext* context);
  // A batch arrived on the job's claimed stream: its idle clock starts again.
  void NoteStreamActivity(const std::string& job_id);
  // Counts `bytes` of decoded calibration data against max_stream_bytes for the job, until it
  // ends or its stream is abandoned. RESOURCE_EXHAUSTED, holding nothing, past the budget.
  absl::Status HoldStreamBytes(const std::string& job_id, int64_t bytes);
  // Hands over a complete stream: the job moves to QUEUED. FAILED_PRECONDITION when it was
  // cancelled meanwhile. In the api role the data must reach the spool (a worker reads it
  // there): otherwise that error, and the stream is abandoned.
  absl::Status CompleteCalibrationStream(const std::string& job_id, std::unique_ptr<core::InMemoryBatches> data);
  // Releases the claim of an incomplete stream; the job keeps waiting for a complete one.
  void AbandonCalibrationStream(const std::string& job_id);

  // Checks the request and queues the evaluation on the workers; `done` gets the metrics (also
  // added to the job's report.json), or CANCELLED soon after `cancelled` is set. Errors in the
  // request come back at once, and `done` is not called.
  absl::Status Evaluate(const v1::EvaluateRequest& request, const TenantScope& scope,
                        std::shared_ptr<const std::atomic<bool>> cancelled, EvaluateProgress progress,
                        EvaluateDone done);

  // Jobs by state, the work queue and the workers, now (for ServiceMetrics' gauges).
  WorkSnapshot Work() const;

  // The workers whose job or evaluation has not made progress (a calibration batch, a layer, a
  // stage, an evaluation batch) for longer than `limit`. Takes no lock a job holds, so it
  // answers even when a worker is wedged holding one.
  std::vector<StalledWorker> Stalled(std::chrono::steady_clock::duration limit) const {
    return queue_.Stalled(limit);
  }

  // Graceful drain: no new submissions or evaluations (UNAVAILABLE), workers take nothing more
  // from the queue, and the jobs being run get up to `grace` to finish. Then Stop(). Queued
  // jobs stay stored as QUEUED for the next start.
  void Drain(std::chrono::milliseconds grace);

  // Stops the workers. Running jobs are interrupted but keep their stored state, so the next
  // start re-queues them. Idempotent.
  void Stop();

 private:
  // What a job needs until it ends, beyond its record; dropped when it ends.
  struct ActiveJob {
    // The config as resolved when the job was submitted, or by the start that recovered it.
    std::shared_ptr<const ResolvedJob> resolved;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    // A worker took the job: from then on only that worker changes its record.
    bool running = false;
    std::shared_ptr<const core::InMemoryBatches> streamed;
    bool stream_claimed = false;
    // The claiming stream's call and when it last delivered a batch; null once cancelled.
    grpc::CallbackServerContext* stream_context = nullptr;
    std::chrono::steady_clock::time_point stream_active_at;
    int64_t stream_bytes = 0;  // held against max_stream_bytes
  };
  JobManager(JobManagerOptions options, JobStore* store, const ModelStore* models, ServiceMetrics* metrics,
             JobLogs* job_logs);
  absl::Status Recover();
  // Recover for the api role: the jobs that have not ended are followed, none is run here.
  absl::Status FollowStoredJobs();
  // The api role's loop: other servers' changes into the registry, jobs that ended or
  // appeared elsewhere into active_, and jobs deleted elsewhere out of both.
  void PollStore();
  // The job's active entry, with its config resolved, for a job that has not ended. Requires
  // mutex_.
  absl::Status TrackLocked(const v1::Job& job);
  // Queues the job's run on the workers; false when the queue no longer accepts work (the job
  // then stays stored as QUEUED, for the next start).
  bool QueueRunLocked(const std::string& job_id);
  // Once a second: fails jobs AWAITING_DATA past awaiting_data_ttl and cancels claimed
  // streams idle past stream_idle_timeout, so neither holds a queue slot or memory forever.
  void RunReaper();
  std::filesystem::path SpoolPath(const std::string& job_id) const;
  // At start, for a stream job that had its data: the spooled data, held against
  // max_stream_bytes; the reason it cannot be used otherwise.
  absl::Status ReloadSpooledLocked(const std::string& job_id, const ResolvedJob& resolved);
  void ReapLocked();
  // Deletes the jobs retention_age and max_results_bytes no longer keep, oldest first.
  void ApplyRetention();
  // Delete, for a job known to exist. Requires mutex_.
  absl::Status DeleteLocked(const std::string& job_id, const char* why);
  // Runs the job on `device`; false when it was not this worker's to run (it had ended, or
  // another worker took it).
  bool RunJob(const std::string& job_id, const WorkQueue::Worker& worker);
  // The job's active entry while its stream may deliver: NOT_FOUND, or FAILED_PRECONDITION
  // naming the state when it is not AWAITING_DATA. Requires mutex_.
  absl::StatusOr<ActiveJob*> AwaitingDataLocked(const std::string& job_id);
  // Ends a job that is not running as FAILED with `reason`, stored and logged. Requires mutex_.
  void FailLocked(const std::string& job_id, const std::string& reason);
  void FinishJob(const std::string& job_id, const absl::Status& status, const std::string& device);
  // Drops the job's active entry, returning its streamed bytes to the budget. Requires mutex_.
  void EndLocked(const std::string& job_id);

  const JobManagerOptions options_;
  JobStore* const store_;
  const ModelStore* models_;
  ServiceMetrics* const metrics_;
  JobLogs* const job_logs_;
  // A job's error is stored as clients read it; the server's log keeps the full paths.
  const ClientVisiblePaths paths_;

  JobRegistry registry_;
  WorkQueue queue_;
  JobEvaluations evaluations_;

  // Guards the active jobs and every change of a job that is not running (the registry's
  // lock is taken after this one).
  mutable std::mutex mutex_;
  std::map<std::string, ActiveJob> active_;
  bool stopping_ = false;
  int64_t stream_bytes_held_ = 0;
  // Jobs and models with an evaluation queued or running: they cannot be deleted meanwhile.
  std::multiset<std::string> evaluated_;
  std::condition_variable reaper_wake_;
  std::thread reaper_;
  std::thread store_poller_;  // the api role's
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_MANAGER_H_
