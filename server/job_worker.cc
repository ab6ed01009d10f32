#include "job_worker.h"

#include <google/protobuf/util/time_util.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "job_config.h"
#include "job_runner.h"
#include "job_states.h"
#include "ptq/core/in_memory_batches.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

namespace {

// Keeps a lease while a job runs: renews it every third of its length from a thread of its
// own, and cancels the run when the api asks for it or the lease is lost.
class LeaseKeeper {
 public:
  LeaseKeeper(JobStore* store, JobStore::Lease lease, std::chrono::milliseconds ttl, std::atomic<bool>* cancelled)
      : store_(store), lease_(std::move(lease)), ttl_(ttl), cancelled_(cancelled) {
    thread_ = std::thread([this] { Renew(); });
  }
  ~LeaseKeeper() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  bool lost() const { return lost_.load(); }
  bool cancel_requested() const { return cancel_requested_.load(); }
  void Lose() {
    lost_ = true;
    *cancelled_ = true;
  }

 private:
  void Renew() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, ttl_ / 3, [this] { return done_; })) {
      lock.unlock();
      absl::StatusOr<bool> renewed = store_->RenewLease(lease_, ttl_);
      lock.lock();
      if (absl::IsAborted(renewed.status())) {
        spdlog::warn("job {}: the lease of attempt {} is lost; the run stops", lease_.job_id, lease_.attempt);
        Lose();
        return;
      }
      // Another error (the database briefly away) is tried again: the lease lasts meanwhile.
      if (!renewed.ok()) spdlog::warn("job {}: cannot renew its lease: {}", lease_.job_id, renewed.status().ToString());
      if (renewed.ok() && *renewed && !cancel_requested_.exchange(true)) *cancelled_ = true;
    }
  }

  JobStore* const store_;
  const JobStore::Lease lease_;
  const std::chrono::milliseconds ttl_;
  std::atomic<bool>* const cancelled_;
  std::atomic<bool> lost_{false};
  std::atomic<bool> cancel_requested_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

void RemoveAll(const fs::path& path) {
  std::error_code error;
  fs::remove_all(path, error);
}

}  // namespace

JobWorker::JobWorker(JobWorkerOptions options, JobStore* store, const ModelStore* models, ServiceMetrics* metrics)
    : options_(std::move(options)),
      store_(store),
      models_(models),
      metrics_(metrics),
      paths_(options_.results_dir.parent_path(), options_.data_root),
      queue_(options_.worker_devices, options_.worker_nice) {}

absl::StatusOr<std::unique_ptr<JobWorker>> JobWorker::Start(JobWorkerOptions options, JobStore* store,
                                                            const ModelStore* models, ServiceMetrics* metrics) {
  if (options.worker_devices.empty()) return absl::InvalidArgumentError("the worker pool needs at least one worker");
  if (options.lease < std::chrono::milliseconds(300)) return absl::InvalidArgumentError("a lease must last >= 300 ms");
  std::error_code error;
  fs::create_directories(options.results_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create folder '", options.results_dir.string(), "': ", error.message()));
  }
  std::unique_ptr<JobWorker> worker(new JobWorker(std::move(options), store, models, metrics));
  worker->queue_.Start();
  for (const std::string& device : worker->options_.worker_devices) {
    worker->queue_.Push(device, [w = worker.get()](const WorkQueue::Worker& slot) { w->ClaimLoop(slot); });
  }
  return worker;
}

JobWorker::~JobWorker() { Stop(); }

void JobWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(runs_mutex_);
    stopping_ = true;
    for (std::atomic<bool>* cancelled : running_) *cancelled = true;
  }
  queue_.Stop();
}

void JobWorker::ClaimLoop(const WorkQueue::Worker& worker) {
  while (!stopping_) {
    worker.Beat();
    absl::StatusOr<std::optional<JobStore::Claim>> claim = store_->ClaimNext(options_.owner, options_.lease);
    if (!claim.ok()) spdlog::warn("worker {}: cannot claim a job: {}", worker.device(), claim.status().ToString());
    if (claim.ok() && claim->has_value()) {
      Run(**std::move(claim), worker);
      continue;
    }
    for (auto slept = std::chrono::milliseconds(0); slept < options_.poll && !stopping_;
         slept += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

void JobWorker::Run(JobStore::Claim claim, const WorkQueue::Worker& worker) {
  const JobStore::Lease lease = claim.lease;
  const std::string& job_id = lease.job_id;
  v1::Job job = std::move(claim.job);
  const auto started = std::chrono::steady_clock::now();
  // This attempt's own names: a former holder that still runs writes elsewhere.
  const std::string output_name = absl::StrCat(".attempt-", lease.attempt, "-", job_id);
  std::atomic<bool> cancelled{false};
  {
    std::lock_guard<std::mutex> lock(runs_mutex_);
    cancelled = stopping_.load();
    running_.insert(&cancelled);
  }
  struct Unregister {
    JobWorker* worker;
    std::atomic<bool>* cancelled;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(worker->runs_mutex_);
      worker->running_.erase(cancelled);
    }
  } unregister{this, &cancelled};
  std::optional<LeaseKeeper> keeper;
  keeper.emplace(store_, lease, options_.lease, &cancelled);
  auto store_job = [&] {
    *job.mutable_updated_at() = TimeUtil::GetCurrentTime();
    if (absl::Status stored = store_->UpdateLeased(lease, job); absl::IsAborted(stored)) keeper->Lose();
  };
  // Ends the job as `job` says, publishing the result directory when it succeeded.
  auto finish = [&](bool publish) {
    *job.mutable_updated_at() = TimeUtil::GetCurrentTime();
    if (IsFinalState(job.state()) && !job.has_finished_at()) *job.mutable_finished_at() = job.updated_at();
    keeper.reset();  // no renewal may race the end
    const absl::Status finished = store_->Finish(lease, job, [&]() -> absl::Status {
      if (!publish) return absl::OkStatus();
      std::error_code error;
      fs::rename(options_.results_dir / output_name, options_.results_dir / job_id, error);
      if (error) return absl::InternalError(absl::StrCat("cannot publish the result directory: ", error.message()));
      return absl::OkStatus();
    });
    RemoveAll(options_.results_dir / output_name);
    if (!finished.ok()) {
      spdlog::warn("job {}: attempt {} is not stored ({}); its result is discarded", job_id, lease.attempt,
                   finished.ToString());
      return;
    }
    if (IsFinalState(job.state())) {
      std::error_code error;
      fs::remove(SpoolPath(options_.streams_dir, job_id), error);
      metrics_->JobRunEnded(StateName(job.state()),
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    spdlog::info("job {} -> {} on {} (attempt {})", job_id, StateName(job.state()), worker.device(), lease.attempt);
  };
  auto fail = [&](const std::string& reason) {
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(paths_.Rewrite(reason).substr(0, kMaxJobErrorLength));
    finish(false);
  };

  // What earlier attempts left (their workers died): a former holder still running finds its
  // folders gone and fails, and could not have published anyway.
  for (int64_t earlier = 1; earlier < lease.attempt; ++earlier) {
    const std::string name = absl::StrCat(".attempt-", earlier, "-", job_id);
    RemoveAll(options_.results_dir / name);
    RemoveAll(options_.results_dir / (kStagingPrefix + name));
  }
  job.set_attempts(static_cast<int32_t>(lease.attempt));
  if (lease.attempt > kMaxJobAttempts) {
    fail(absl::StrCat("workers took this job ", lease.attempt - 1,
                      " times and none finished it; it is not run again (see the workers' logs for the cause)"));
    return;
  }
  v1::JobConfig config = job.config();
  absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
  if (!resolved.ok()) {
    fail(absl::StrCat("its config does not resolve on worker ", options_.owner, ": ", resolved.status().message()));
    return;
  }
  JobRun run;
  if (resolved->streamed) {
    absl::StatusOr<std::unique_ptr<core::InMemoryBatches>> data = core::InMemoryBatches::LoadSpooled(
        SpoolPath(options_.streams_dir, job_id).string(), resolved->preprocess);
    if (!data.ok()) {
      fail(absl::StrCat("its streamed calibration data cannot be read: ", data.status().message()));
      return;
    }
    run.streamed = *std::move(data);
  }
  job.set_state(v1::JOB_STATE_QUEUED);
  job.clear_progress();
  *job.mutable_started_at() = TimeUtil::GetCurrentTime();
  store_job();
  spdlog::info("job {} claimed by {} on {} (attempt {})", job_id, options_.owner, worker.device(), lease.attempt);

  run.job_id = job_id;
  run.config = config;
  run.resolved = *resolved;
  run.model_path = models_->ModelFile(config.model().model_id()).string();
  run.device = worker.device();
  run.results_dir = options_.results_dir;
  run.output_name = output_name;
  run.cancelled = &cancelled;
  std::optional<std::chrono::steady_clock::time_point> progress_stored_at;
  run.enter_state = [&](v1::JobState state, int64_t total, const std::string& unit) {
    worker.Beat();
    job.set_state(state);
    job.mutable_progress()->set_done(0);
    job.mutable_progress()->set_total(total);
    job.mutable_progress()->set_unit(unit);
    store_job();
    progress_stored_at = std::chrono::steady_clock::now();
  };
  run.progress = [&](int64_t done, int64_t total) {
    worker.Beat();
    job.mutable_progress()->set_done(done);
    job.mutable_progress()->set_total(total);
    const auto now = std::chrono::steady_clock::now();
    if (done == total || !progress_stored_at || now - *progress_stored_at >= kProgressStoreInterval) {
      store_job();
      progress_stored_at = now;
    }
  };
  absl::StatusOr<JobOutput> output = RunQuantJob(run);
  if (keeper->lost()) {
    RemoveAll(options_.results_dir / output_name);
    spdlog::warn("job {}: attempt {} lost its lease; its result is discarded", job_id, lease.attempt);
    return;
  }
  if (!output.ok() && absl::IsCancelled(output.status()) && stopping_ && !keeper->cancel_requested()) {
    // Interrupted by this worker stopping: back to the queue, for another worker.
    job.set_state(v1::JOB_STATE_QUEUED);
    job.clear_progress();
    finish(false);
    return;
  }
  if (!output.ok()) {
    if (absl::IsCancelled(output.status())) {
      job.set_state(v1::JOB_STATE_CANCELLED);
      finish(false);
    } else {
      fail(std::string(output.status().message()));
    }
    return;
  }
  RecordSuccess(*output, job);
  finish(true);
}

}  // namespace ptq::server
