#ifndef PTQ_SERVER_JOB_WORKER_H_
#define PTQ_SERVER_JOB_WORKER_H_

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client_visible_paths.h"
#include "job_store.h"
#include "metrics/service_metrics.h"
#include "model_store.h"
#include "work_queue.h"

namespace ptq::server {

struct JobWorkerOptions {
  // On storage every api and worker server mounts: the api's models, spools and results.
  std::filesystem::path results_dir;
  std::filesystem::path streams_dir;
  std::string data_root;
  std::vector<std::string> worker_devices = {"cpu"};
  int worker_nice = 10;
  // Names this process in the leases it holds (unique among the workers of a store).
  std::string owner;
  // A lease lasts this long unless renewed (a third of it between renewals): a worker that
  // dies or stalls loses its job to another worker within it.
  std::chrono::milliseconds lease{30000};
  // How often an idle worker asks the store for a queued job.
  std::chrono::milliseconds poll{1000};
};

// The worker role: each device's worker claims queued jobs from a shared store
// (JobStore::ClaimNext), runs them, and renews its lease while it does. Every write names the
// lease, so a worker that lost its job (paused or cut off past its lease) changes nothing:
// its run is cancelled, and its result directory, built under a name of its own attempt, is
// deleted instead of published. A job is published (its directory renamed into place) and
// ended in one step under the job's row lock (JobStore::Finish). A job claimed more than
// kMaxJobAttempts times (its workers kept dying) is failed. Thread-safe.
class JobWorker {
 public:
  static absl::StatusOr<std::unique_ptr<JobWorker>> Start(JobWorkerOptions options, JobStore* store,
                                                          const ModelStore* models, ServiceMetrics* metrics);
  ~JobWorker();  // Stop()s

  // The workers whose job has made no progress (nor polled the store, when idle) for longer
  // than `limit`.
  std::vector<StalledWorker> Stalled(std::chrono::steady_clock::duration limit) const {
    return queue_.Stalled(limit);
  }

  // Claims nothing more; jobs being run are interrupted and handed back to the queue for
  // another worker. Idempotent.
  void Stop();

 private:
  JobWorker(JobWorkerOptions options, JobStore* store, const ModelStore* models, ServiceMetrics* metrics);
  void ClaimLoop(const WorkQueue::Worker& worker);
  void Run(JobStore::Claim claim, const WorkQueue::Worker& worker);

  const JobWorkerOptions options_;
  JobStore* const store_;
  const ModelStore* const models_;
  ServiceMetrics* const metrics_;
  // A job's error is stored as clients read it; the worker's log keeps the full paths.
  const ClientVisiblePaths paths_;
  WorkQueue queue_;
  std::atomic<bool> stopping_{false};
  std::mutex runs_mutex_;
  std::set<std::atomic<bool>*> running_;  // the cancel flags of the runs in progress
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_WORKER_H_
