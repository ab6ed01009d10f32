#include "job_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "calibration_reuse.h"
#include "job_protos.h"
#include "job_runner.h"
#include "job_states.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

namespace {

constexpr size_t kMaxIdempotencyKeyLength = 256;
// How often retention looks for jobs to delete.
constexpr std::chrono::seconds kRetentionInterval{5};
constexpr char kRestartedReason[] = "server restarted and the job's streamed calibration data was not kept";

std::string NewJobId() {
  static std::mutex mutex;
  static std::mt19937_64 random{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mutex);
  return absl::StrFormat("job-%016x", random());
}

// Checks that a dataset opens (index file, listed files, IDX headers) without reading it all.
absl::Status CheckDatasetOpens(core::DataSpec spec, absl::string_view key) {
  spec.limit = 1;
  spec.batch_size = 1;
  spec.prefetch_batches = 0;
  absl::StatusOr<std::unique_ptr<core::BatchSource>> source = core::OpenDataset(spec);
  if (!source.ok()) return absl::Status(source.status().code(), absl::StrCat(key, ": ", source.status().message()));
  return absl::OkStatus();
}

// What a submission repeating idempotency key `key` gets: the job the key made, or
// ALREADY_EXISTS when that job was submitted with another config.
absl::StatusOr<v1::Job> Resubmitted(const v1::Job& existing, const v1::JobConfig& config, const std::string& key) {
  if (!google::protobuf::util::MessageDifferencer::Equals(existing.config(), config)) {
    return absl::AlreadyExistsError(
        absl::StrCat("idempotency_key '", key, "' was used for job ", existing.job_id(), " with a different config"));
  }
  return existing;
}

}  // namespace

JobManager::JobManager(JobManagerOptions options, JobStore* store, const ModelStore* models,
                       ServiceMetrics* metrics, JobLogs* job_logs)
    : options_(std::move(options)),
      store_(store),
      models_(models),
      metrics_(metrics),
      job_logs_(job_logs),
      paths_(options_.results_dir.parent_path(), options_.data_root),
      registry_(store, kProgressStoreInterval),
      queue_(options_.worker_devices, options_.worker_nice),
      evaluations_(
          JobEvaluations::Options{options_.results_dir, options_.data_root, options_.cached_sessions}, models,
          [this](const std::string& job_id) { return registry_.Get(job_id); },
          [this](const std::string& job_id, const std::vector<core::ManifestEntry>& artifacts) {
            registry_.Change(job_id, [&](v1::Job& job) { SetArtifacts(artifacts, job); });
          }) {}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(JobManagerOptions options, JobStore* store,
                                                              const ModelStore* models, ServiceMetrics* metrics,
                                                              JobLogs* job_logs) {
  if (options.worker_devices.empty()) return absl::InvalidArgumentError("the worker pool needs at least one worker");
  std::error_code error;
  for (const fs::path& folder : {options.results_dir, options.streams_dir}) {
    fs::create_directories(folder, error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot create folder '", folder.string(), "': ", error.message()));
    }
  }
  std::unique_ptr<JobManager> manager(new JobManager(std::move(options), store, models, metrics, job_logs));
  const absl::Status recovered = manager->options_.run_jobs ? manager->Recover() : manager->FollowStoredJobs();
  if (!recovered.ok()) return recovered;
  manager->queue_.Start();
  manager->reaper_ = std::thread([m = manager.get()] { m->RunReaper(); });
  if (!manager->options_.run_jobs) manager->store_poller_ = std::thread([m = manager.get()] { m->PollStore(); });
  return manager;
}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::Recover() {
  // Staging folders belong to runs a stop interrupted; their jobs run again from the start.
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.results_dir, error)) {
    if (entry.path().filename().string().rfind(kStagingPrefix, 0) == 0) fs::remove_all(entry.path(), error);
  }
  absl::StatusOr<std::vector<v1::Job>> jobs = registry_.Load();
  if (!jobs.ok()) return jobs.status();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const v1::Job& job : *jobs) {
    const v1::JobState state = job.state();
    if (IsFinalState(state)) continue;
    const std::string& job_id = job.job_id();
    v1::JobConfig config = job.config();
    absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
    if (!resolved.ok()) {
      FailLocked(job_id, absl::StrCat("its config no longer resolves on this server: ", resolved.status().message()));
      continue;
    }
    if (state != v1::JOB_STATE_AWAITING_DATA && job.attempts() >= kMaxJobAttempts) {
      FailLocked(job_id, absl::StrCat("the server stopped while running this job ", job.attempts(),
                                      " times; it is not run again (see the server's log for the cause)"));
      continue;
    }
    active_[job_id].resolved = std::make_shared<const ResolvedJob>(*resolved);
    if (resolved->streamed) {
      // Its data is on disk once its stream completed (also when a crash came before it was queued).
      const absl::Status reloaded = ReloadSpooledLocked(job_id, *resolved);
      if (!reloaded.ok() && state != v1::JOB_STATE_AWAITING_DATA) {
        FailLocked(job_id, absl::StrCat(kRestartedReason, " (", reloaded.message(), "); submit it again"));
        continue;
      }
      if (!reloaded.ok()) continue;  // waits for its stream, as before
    } else if (state == v1::JOB_STATE_AWAITING_DATA) {
      continue;
    }
    registry_.Change(job_id, [](v1::Job& job) {
      job.set_state(v1::JOB_STATE_QUEUED);
      job.clear_progress();
      job.clear_started_at();
    });
    QueueRunLocked(job_id);
    spdlog::info("job {} re-queued after a restart (was {})", job_id, StateName(state));
  }
  // Spools of jobs that ended (or were deleted) while their file was being removed, and
  // temporaries a crash left.
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.streams_dir, error)) {
    const std::string job_id = entry.path().stem().string();
    if (entry.path().extension() != kSpoolSuffix || active_.count(job_id) == 0) fs::remove(entry.path(), error);
  }
  return absl::OkStatus();
}

fs::path JobManager::SpoolPath(const std::string& job_id) const {
  return server::SpoolPath(options_.streams_dir, job_id);
}

absl::Status JobManager::FollowStoredJobs() {
  absl::StatusOr<std::vector<v1::Job>> jobs = registry_.Load();
  if (!jobs.ok()) return jobs.status();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const v1::Job& job : *jobs) {
    if (!IsFinalState(job.state())) (void)TrackLocked(job);
  }
  return absl::OkStatus();
}

absl::Status JobManager::TrackLocked(const v1::Job& job) {
  if (active_.count(job.job_id()) != 0) return absl::OkStatus();
  v1::JobConfig config = job.config();
  absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
  if (!resolved.ok()) {
    // Its worker says so when it runs it; a stream for it is refused here meanwhile.
    spdlog::warn("job {}: its config does not resolve on this server: {}", job.job_id(),
                 std::string(resolved.status().message()));
    return resolved.status();
  }
  active_[job.job_id()].resolved = std::make_shared<const ResolvedJob>(*std::move(resolved));
  return absl::OkStatus();
}

void JobManager::PollStore() {
  int64_t version = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    absl::StatusOr<JobStore::Changes> changes = store_->ChangesSince(version);
    lock.lock();
    if (!changes.ok()) {
      spdlog::warn("cannot read the job store's changes: {}", changes.status().ToString());
    } else {
      version = changes->version;
      registry_.Refresh(changes->rows);
      for (const JobStore::Row& row : changes->rows) {
        if (IsFinalState(row.job.state())) {
          EndLocked(row.job.job_id());
        } else {
          (void)TrackLocked(row.job);
        }
      }
      // Another api server deleted them (their files and log with them).
      for (const std::string& job_id : changes->deleted) {
        registry_.Forget(job_id);
        EndLocked(job_id);
        evaluations_.ForgetSession(job_id);
      }
    }
    reaper_wake_.wait_for(lock, options_.store_poll, [this] { return stopping_; });
  }
}

absl::Status JobManager::ReloadSpooledLocked(const std::string& job_id, const ResolvedJob& resolved) {
  std::error_code error;
  if (!fs::exists(SpoolPath(job_id), error)) return absl::NotFoundError("no spool of it");
  absl::StatusOr<std::unique_ptr<core::InMemoryBatches>> data =
      core::InMemoryBatches::LoadSpooled(SpoolPath(job_id).string(), resolved.preprocess);
  if (!data.ok()) return data.status();
  const int64_t bytes = (*data)->num_images() * resolved.preprocess.sample_numel() * static_cast<int64_t>(sizeof(float));
  if (bytes > options_.max_stream_bytes - stream_bytes_held_) {
    return absl::ResourceExhaustedError(absl::StrCat("its ", bytes, " bytes of data exceed what --max-stream-mb leaves"));
  }
  ActiveJob& active = active_[job_id];
  active.streamed = *std::move(data);
  active.stream_bytes = bytes;
  stream_bytes_held_ += bytes;
  return absl::OkStatus();
}

void JobManager::FailLocked(const std::string& job_id, const std::string& reason) {
  EndLocked(job_id);
  v1::JobState before = v1::JOB_STATE_UNSPECIFIED;
  registry_.Change(job_id, [&](v1::Job& job) {
    before = job.state();
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(paths_.Rewrite(reason));
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
  spdlog::warn("job {} {} -> FAILED: {}", job_id, StateName(before), reason);
}

void JobManager::EndLocked(const std::string& job_id) {
  auto found = active_.find(job_id);
  if (found == active_.end()) return;
  stream_bytes_held_ -= found->second.stream_bytes;
  if (found->second.streamed != nullptr) {
    std::error_code ignored;  // a file left behind goes at the next start
    fs::remove(SpoolPath(job_id), ignored);
  }
  active_.erase(found);
}

absl::StatusOr<v1::Job> JobManager::Submit(v1::JobConfig config, const std::string& idempotency_key,
                                           bool validate_only, const TenantScope& caller) {
  if (idempotency_key.size() > kMaxIdempotencyKeyLength) {
    return absl::InvalidArgumentError(absl::StrCat("idempotency_key is ", idempotency_key.size(),
                                                   " characters long; at most ", kMaxIdempotencyKeyLength,
                                                   " are accepted"));
  }
  if (const std::string& from_job = config.calibration().from_job(); !from_job.empty()) {
    absl::StatusOr<v1::Job> earlier = registry_.GetVisible(from_job, caller);
    if (!earlier.ok()) {
      return absl::Status(earlier.status().code(), absl::StrCat("calibration.from_job: ", earlier.status().message()));
    }
    if (earlier->state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat("calibration.from_job: job ", from_job, " is ",
                                                        StateName(earlier->state()),
                                                        "; only a SUCCEEDED job's calibration can be reused"));
    }
    if (absl::Status inherited = InheritCalibration(*earlier, &config); !inherited.ok()) return inherited;
  }
  absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
  if (!resolved.ok()) return resolved.status();
  if (!idempotency_key.empty() && !validate_only) {
    if (std::optional<v1::Job> existing = registry_.FindByIdempotencyKey(caller.tenant, idempotency_key);
        existing.has_value()) {
      return Resubmitted(*existing, config, idempotency_key);
    }
  }
  absl::StatusOr<v1::Model> model = models_->Get(config.model().model_id(), caller);
  if (!model.ok() && !(validate_only && absl::IsNotFound(model.status()))) {
    return absl::Status(model.status().code(),
                        absl::StrCat("model.model_id: ", model.status().message(), " (upload it first)"));
  }
  if (!resolved->streamed && resolved->calibration_from_job.empty()) {
    if (absl::Status opens = CheckDatasetOpens(resolved->calibration, "calibration.path"); !opens.ok()) return opens;
  }
  if (resolved->evaluation.has_value()) {
    if (absl::Status opens = CheckDatasetOpens(*resolved->evaluation, "evaluate.path"); !opens.ok()) return opens;
  }
  if (validate_only) {
    v1::Job checked;
    *checked.mutable_config() = std::move(config);
    return checked;
  }

  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_ || !queue_.accepting()) return absl::UnavailableError("the server is shutting down");
  // Again under the lock DeleteModel holds: the model may have been deleted since.
  if (absl::StatusOr<v1::Model> kept = models_->Get(config.model().model_id(), caller); !kept.ok()) {
    return absl::Status(kept.status().code(), absl::StrCat("model.model_id: ", kept.status().message()));
  }
  if (!idempotency_key.empty()) {
    std::optional<v1::Job> twin = registry_.FindByIdempotencyKey(caller.tenant, idempotency_key);
    if (twin.has_value()) return *twin;  // a concurrent twin won
  }
  if (registry_.CountInStates({v1::JOB_STATE_QUEUED, v1::JOB_STATE_AWAITING_DATA}) >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the job queue is full (", options_.max_queue, " jobs waiting); try again later"));
  }
  v1::Job job;
  job.set_job_id(NewJobId());
  job.set_name(config.name());
  job.set_idempotency_key(idempotency_key);
  job.set_tenant(caller.tenant);
  job.set_state(resolved->streamed ? v1::JOB_STATE_AWAITING_DATA : v1::JOB_STATE_QUEUED);
  job.mutable_progress()->set_total(resolved->quant_batch_num);
  job.mutable_progress()->set_unit("batches");
  *job.mutable_config() = std::move(config);
  *job.mutable_created_at() = TimeUtil::GetCurrentTime();
  *job.mutable_updated_at() = job.created_at();
  absl::StatusOr<v1::Job> added = registry_.Add(job);
  if (!added.ok()) return added.status();
  // Another api server stored a job with this key first (the client retried elsewhere).
  if (added->job_id() != job.job_id()) return Resubmitted(*added, job.config(), idempotency_key);
  ActiveJob& active = active_[job.job_id()];
  active.resolved = std::make_shared<const ResolvedJob>(*std::move(resolved));
  if (!active.resolved->streamed) QueueRunLocked(job.job_id());
  spdlog::info("job {} submitted ('{}', model {}, {} {}, {} calibration) -> {}", job.job_id(), job.name(),
               job.config().model().model_id().substr(0, 12), job.config().ptq().activation_quantizer(),
               job.config().ptq().weight_quantizer(), job.config().calibration().source(), StateName(job.state()));
  return job;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& job_id, const TenantScope& scope) const {
  return registry_.GetVisible(job_id, scope);
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& request,
                                                     const TenantScope& scope) const {
  return registry_.List(request, scope);
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id, const TenantScope& scope) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<v1::Job> job = registry_.GetVisible(job_id, scope);
  if (!job.ok()) return job.status();
  auto active = active_.find(job_id);
  if (active == active_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " already ended (", StateName(job->state()), "); nothing to cancel"));
  }
  active->second.cancelled->store(true);
  if (active->second.running) {
    spdlog::info("job {} cancel requested while {}", job_id, StateName(job->state()));
    return job;
  }
  if (!options_.run_jobs) {
    // Ended at once while it waits; otherwise its worker hears at its next lease renewal.
    absl::StatusOr<v1::Job> cancelled = registry_.ChangeIfWaiting(job_id, [](v1::Job& job) {
      job.set_state(v1::JOB_STATE_CANCELLED);
      *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
    });
    if (cancelled.ok()) {
      EndLocked(job_id);
      spdlog::info("job {} {} -> CANCELLED", job_id, StateName(job->state()));
      return cancelled;
    }
    if (!absl::IsAborted(cancelled.status())) return cancelled.status();
    if (absl::Status asked = store_->RequestCancel(job_id); !asked.ok()) return asked;
    spdlog::info("job {} cancel requested from its worker", job_id);
    return job;
  }
  queue_.Remove(job_id);
  EndLocked(job_id);
  spdlog::info("job {} {} -> CANCELLED", job_id, StateName(job->state()));
  return registry_.Change(job_id, [](v1::Job& job) {
    job.set_state(v1::JOB_STATE_CANCELLED);
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
}

absl::StatusOr<int64_t> JobManager::Watch(const std::string& job_id, const TenantScope& scope, Listener listener) {
  // A job's tenant never changes: seeing it now is seeing it for as long as it is watched.
  if (absl::StatusOr<v1::Job> visible = registry_.GetVisible(job_id, scope); !visible.ok()) return visible.status();
  return registry_.Watch(job_id, std::move(listener));
}

void JobManager::Unwatch(int64_t watch_id) { registry_.Unwatch(watch_id); }

absl::StatusOr<JobManager::ActiveJob*> JobManager::AwaitingDataLocked(const std::string& job_id) {
  absl::StatusOr<v1::Job> job = registry_.Get(job_id);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_AWAITING_DATA) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " is ", StateName(job->state()),
                                                      "; calibration batches are accepted only while AWAITING_DATA"));
  }
  return &active_.at(job_id);
}

absl::StatusOr<StreamExpectation> JobManager::BeginCalibrationStream(const std::string& job_id,
                                                                     const TenantScope& scope,
                                                                     grpc::CallbackServerContext* context) {
  if (absl::StatusOr<v1::Job> visible = registry_.GetVisible(job_id, scope); !visible.ok()) return visible.status();
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<ActiveJob*> active = AwaitingDataLocked(job_id);
  if (!active.ok()) return active.status();
  if ((*active)->stream_claimed) {
    return absl::AbortedError(absl::StrCat("another StreamCalibrationBatch call for job ", job_id, " is in progress"));
  }
  (*active)->stream_claimed = true;
  (*active)->stream_context = context;
  (*active)->stream_active_at = std::chrono::steady_clock::now();
  const ResolvedJob& resolved = *(*active)->resolved;
  return StreamExpectation{resolved.preprocess, resolved.quant_batch_num, resolved.quant_batch_size};
}

absl::Status JobManager::CompleteCalibrationStream(const std::string& job_id,
                                                   std::unique_ptr<core::InMemoryBatches> data) {
  // On disk before the job is queued, and outside the lock: what a restart runs the job from.
  // Without it (a full disk) the job still runs from memory; only a restart would fail it.
  if (absl::Status spooled = data->SpoolTo(SpoolPath(job_id).string()); !spooled.ok()) {
    // In the api role the spool is how the data reaches a worker: the job keeps waiting for a
    // stream that can be kept.
    if (!options_.run_jobs) {
      AbandonCalibrationStream(job_id);
      return spooled;
    }
    spdlog::warn("job {}: its calibration data is not kept on disk, so a restart before it ends fails it: {}",
                 job_id, std::string(spooled.message()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<ActiveJob*> active = AwaitingDataLocked(job_id);
  if (!active.ok()) {
    std::error_code ignored;
    fs::remove(SpoolPath(job_id), ignored);
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " became ", StateName(registry_.Get(job_id)->state()),
                                                      " while its data was streaming"));
  }
  (*active)->stream_claimed = false;
  (*active)->stream_context = nullptr;
  auto queued = [](v1::Job& job) {
    job.set_state(v1::JOB_STATE_QUEUED);
    job.mutable_progress()->set_done(0);
    job.mutable_progress()->set_total(job.config().calibration().quant_batch_num());
    job.mutable_progress()->set_unit("batches");
  };
  if (!options_.run_jobs) {
    // A worker reads the spool; the memory goes back to the budget now.
    stream_bytes_held_ -= (*active)->stream_bytes;
    (*active)->stream_bytes = 0;
    if (absl::StatusOr<v1::Job> stored = registry_.ChangeIfWaiting(job_id, queued); !stored.ok()) {
      std::error_code ignored;
      fs::remove(SpoolPath(job_id), ignored);
      return stored.status();
    }
    spdlog::info("job {} AWAITING_DATA -> QUEUED", job_id);
    return absl::OkStatus();
  }
  (*active)->streamed = std::move(data);
  registry_.Change(job_id, queued);
  spdlog::info("job {} AWAITING_DATA -> QUEUED", job_id);
  QueueRunLocked(job_id);
  return absl::OkStatus();
}

void JobManager::AbandonCalibrationStream(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto active = active_.find(job_id);
  if (active == active_.end()) return;  // ended meanwhile, its bytes already returned
  active->second.stream_claimed = false;
  active->second.stream_context = nullptr;
  stream_bytes_held_ -= active->second.stream_bytes;
  active->second.stream_bytes = 0;
}

absl::Status JobManager::HoldStreamBytes(const std::string& job_id, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<ActiveJob*> active = AwaitingDataLocked(job_id);
  if (!active.ok()) return active.status();
  if (bytes > options_.max_stream_bytes - stream_bytes_held_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this batch would take the calibration data held for stream jobs past --max-stream-mb (",
        options_.max_stream_bytes >> 20, " MiB); try again when queued stream jobs have run"));
  }
  stream_bytes_held_ += bytes;
  (*active)->stream_bytes += bytes;
  return absl::OkStatus();
}

void JobManager::NoteStreamActivity(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto active = active_.find(job_id);
  if (active != active_.end()) active->second.stream_active_at = std::chrono::steady_clock::now();
}

bool JobManager::QueueRunLocked(const std::string& job_id) {
  if (!options_.run_jobs) return true;  // a worker of the store claims it
  return queue_.Push(job_id, [this, job_id](const WorkQueue::Worker& worker) {
    const auto started = std::chrono::steady_clock::now();
    bool ran = true;
    // Core turns what LibTorch and OpenCV throw into statuses; this is the last line, so that
    // nothing a job does can end the process.
    try {
      ran = RunJob(job_id, worker);
    } catch (const std::exception& e) {
      spdlog::error("worker {}: unexpected exception: {}", worker.device(), e.what());
      FinishJob(job_id, absl::InternalError(absl::StrCat("unexpected error: ", e.what())), worker.device());
    }
    // A run a stop interrupted has not ended: the next start runs the job again.
    if (absl::StatusOr<v1::Job> job = registry_.Get(job_id); ran && job.ok() && IsFinalState(job->state())) {
      metrics_->JobRunEnded(StateName(job->state()),
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
  });
}

bool JobManager::RunJob(const std::string& job_id, const WorkQueue::Worker& worker) {
  const std::string& device = worker.device();
  JobRun run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto active = active_.find(job_id);
    if (active == active_.end() || active->second.running) return false;
    active->second.running = true;
    run.resolved = *active->second.resolved;
    run.streamed = active->second.streamed;
    run.cancelled = active->second.cancelled.get();
    run.config = registry_
                     .Change(job_id,
                             [](v1::Job& job) {
                               *job.mutable_started_at() = TimeUtil::GetCurrentTime();
                               job.set_attempts(job.attempts() + 1);
                             })
                     .config();
  }
  // From here on this thread alone changes the job's record, until FinishJob or success.
  run.job_id = job_id;
  run.model_path = models_->ModelFile(run.config.model().model_id()).string();
  run.device = device;
  run.results_dir = options_.results_dir;
  run.enter_state = [&](v1::JobState state, int64_t total, const std::string& unit) {
    worker.Beat();
    v1::JobState before = v1::JOB_STATE_UNSPECIFIED;
    registry_.Change(job_id, [&](v1::Job& job) {
      before = job.state();
      job.set_state(state);
      job.mutable_progress()->set_done(0);
      job.mutable_progress()->set_total(total);
      job.mutable_progress()->set_unit(unit);
    });
    spdlog::info("job {} {} -> {}", job_id, StateName(before), StateName(state));
  };
  run.progress = [&](int64_t done, int64_t total) {
    worker.Beat();
    registry_.ReportProgress(job_id, done, total);
  };
  absl::StatusOr<JobOutput> output = RunQuantJob(run);
  if (!output.ok()) {
    FinishJob(job_id, output.status(), device);
    return true;
  }
  const v1::Timings& timings = output->timings;
  metrics_->StageTimed("model_load", timings.model_load_seconds());
  metrics_->StageTimed("calibration", timings.calibration_seconds());
  metrics_->StageTimed("export", timings.export_seconds());
  if (run.resolved.evaluation.has_value()) metrics_->StageTimed("evaluation", timings.evaluation_seconds());
  metrics_->ImagesCalibrated(output->calibration_images,
                             timings.calibration_seconds() - timings.model_load_seconds());
  std::lock_guard<std::mutex> lock(mutex_);
  EndLocked(job_id);
  evaluations_.KeepSession(job_id, output->session);
  v1::JobState before = v1::JOB_STATE_UNSPECIFIED;
  registry_.Change(job_id, [&](v1::Job& job) {
    before = job.state();
    RecordSuccess(*output, job);
  });
  spdlog::info("job {} {} -> SUCCEEDED in {:.1f} s on {}", job_id, StateName(before),
               output->timings.total_seconds(), device);
  return true;
}

void JobManager::FinishJob(const std::string& job_id, const absl::Status& status, const std::string& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  const v1::JobState before = registry_.Get(job_id)->state();
  if (absl::IsCancelled(status) && stopping_) {
    // Interrupted by a stop, not by its user: the stored state stays, so a restart re-queues it,
    // and the run is not counted against the job's attempts.
    registry_.Change(job_id, [](v1::Job& job) { job.set_attempts(std::max(0, job.attempts() - 1)); });
    spdlog::info("job {} interrupted while {} by the server stopping", job_id, StateName(before));
    return;
  }
  auto active = active_.find(job_id);
  const bool cancelled = absl::IsCancelled(status) && active != active_.end() && active->second.cancelled->load();
  EndLocked(job_id);
  registry_.Change(job_id, [&](v1::Job& job) {
    job.set_state(cancelled ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED);
    if (!cancelled) job.set_error(paths_.Rewrite(status.message()).substr(0, kMaxJobErrorLength));
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
  if (cancelled) {
    spdlog::info("job {} {} -> CANCELLED", job_id, StateName(before));
  } else {
    spdlog::warn("job {} {} -> FAILED on {}: {}", job_id, StateName(before), device, std::string(status.message()));
  }
}

absl::Status JobManager::Evaluate(const v1::EvaluateRequest& request, const TenantScope& scope,
                                  std::shared_ptr<const std::atomic<bool>> cancelled, EvaluateProgress progress,
                                  EvaluateDone done) {
  if (request.target_case() == v1::EvaluateRequest::kJobId) {
    if (absl::StatusOr<v1::Job> job = registry_.GetVisible(request.job_id(), scope); !job.ok()) return job.status();
  } else if (request.target_case() == v1::EvaluateRequest::kModelId) {
    if (absl::StatusOr<v1::Model> model = models_->Get(request.model_id(), scope); !model.ok()) return model.status();
  }
  if (absl::Status checked = evaluations_.Check(request); !checked.ok()) return checked;
  const std::string target = request.target_case() == v1::EvaluateRequest::kJobId ? request.job_id() : request.model_id();
  std::lock_guard<std::mutex> lock(mutex_);
  const bool queued =
      !stopping_ && queue_.Push("", [this, request, target, cancelled, progress, done](const WorkQueue::Worker& worker) {
        absl::StatusOr<v1::Metrics> metrics = absl::CancelledError("evaluation cancelled");
        if (!cancelled->load()) {
          try {
            metrics = evaluations_.Run(request, cancelled.get(), [&](int64_t images, int64_t total) {
              worker.Beat();
              progress(images, total);
            });
          } catch (const std::exception& e) {  // the caller is answered whatever happens
            metrics = absl::InternalError(absl::StrCat("unexpected error: ", e.what()));
          }
        }
        {
          std::lock_guard<std::mutex> lock(mutex_);
          evaluated_.erase(evaluated_.find(target));
        }
        done(std::move(metrics));
      });
  if (!queued) return absl::UnavailableError("the server is shutting down");
  evaluated_.insert(target);
  return absl::OkStatus();
}

absl::Status JobManager::Delete(const std::string& job_id, const TenantScope& scope) {
  if (absl::StatusOr<v1::Job> job = registry_.GetVisible(job_id, scope); !job.ok()) return job.status();
  std::lock_guard<std::mutex> lock(mutex_);
  return DeleteLocked(job_id, "asked for");
}

absl::Status JobManager::DeleteLocked(const std::string& job_id, const char* why) {
  absl::StatusOr<v1::Job> job = registry_.Get(job_id);
  if (!job.ok()) return job.status();  // deleted meanwhile
  if (!IsFinalState(job->state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", StateName(job->state()), "; cancel it before deleting it"));
  }
  if (evaluated_.count(job_id) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("an evaluation of job ", job_id, " is queued or running; delete the job once it ends"));
  }
  // Out of clients' sight in one rename (a restart removes what a crash leaves under the
  // staging prefix), then the record, then the files.
  const fs::path result_dir = options_.results_dir / job_id;
  const fs::path doomed = options_.results_dir / absl::StrCat(kStagingPrefix, "deleted-", job_id);
  std::error_code error;
  const bool had_results = fs::exists(result_dir, error);
  if (had_results) {
    fs::rename(result_dir, doomed, error);
    if (error) return absl::InternalError(absl::StrCat("cannot remove the result directory of job ", job_id));
  }
  absl::Status removed = registry_.Remove(job_id);
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    if (had_results) fs::rename(doomed, result_dir, error);
    return removed;
  }
  fs::remove_all(doomed, error);
  // Another api server deleted the record first (both ran retention): the files go all the same.
  if (!removed.ok()) return removed;
  evaluations_.ForgetSession(job_id);
  job_logs_->Remove(job_id);
  // Worded without "job <id>", which would start the job's log again.
  spdlog::info("deleted {} ({}, {}; {})", job_id, StateName(job->state()), job->tenant(), why);
  return absl::OkStatus();
}

absl::StatusOr<bool> JobManager::DeleteModel(const std::string& model_id, const TenantScope& scope) {
  if (absl::StatusOr<v1::Model> model = models_->Get(model_id, scope); !model.ok()) return model.status();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [job_id, active] : active_) {
    if (registry_.Get(job_id)->config().model().model_id() == model_id) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " uses model ", model_id, " and has not ended; cancel it or wait"));
    }
  }
  if (evaluated_.count(model_id) > 0) {
    return absl::FailedPreconditionError(absl::StrCat("an evaluation of model ", model_id, " is queued or running"));
  }
  return models_->Delete(model_id, scope);
}

WorkSnapshot JobManager::Work() const {
  WorkSnapshot work;
  const google::protobuf::EnumDescriptor* states = v1::JobState_descriptor();
  for (int i = 0; i < states->value_count(); ++i) {
    const auto state = static_cast<v1::JobState>(states->value(i)->number());
    if (state != v1::JOB_STATE_UNSPECIFIED) work.jobs_by_state[StateName(state)] = registry_.CountInStates({state});
  }
  work.queued_work_items = queue_.queued();
  work.busy_workers = queue_.busy();
  work.workers = static_cast<int>(options_.worker_devices.size());
  return work;
}

void JobManager::Drain(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
  }
  if (!queue_.Drain(grace)) {
    spdlog::warn("draining: grace period over; interrupting running jobs (re-queued at the next start)");
  }
  Stop();
}

void JobManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [job_id, active] : active_) {
      if (active.running) active.cancelled->store(true);
    }
  }
  reaper_wake_.notify_all();
  queue_.Stop();
  if (reaper_.joinable()) reaper_.join();
  if (store_poller_.joinable()) store_poller_.join();
}

void JobManager::RunReaper() {
  const bool retains = options_.retention_age.count() > 0 || options_.max_results_bytes > 0;
  auto retention_due = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    ReapLocked();
    if (retains && std::chrono::steady_clock::now() >= retention_due) {
      // Sizing result directories reads the disk: not under the lock submissions need.
      lock.unlock();
      ApplyRetention();
      lock.lock();
      retention_due = std::chrono::steady_clock::now() + kRetentionInterval;
    }
    reaper_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

void JobManager::ApplyRetention() {
  const std::vector<v1::Job> ended = registry_.EndedOldestFirst();
  std::vector<std::pair<std::string, const char*>> doomed;
  const google::protobuf::Timestamp finished_before =
      TimeUtil::GetCurrentTime() - TimeUtil::SecondsToDuration(options_.retention_age.count());
  // A result directory's size is its artifacts' as its record lists them (kept up to date when
  // an evaluation rewrites report.json), so the check reads no disk.
  int64_t total_bytes = 0;
  std::vector<int64_t> bytes(ended.size(), 0);
  for (size_t i = 0; i < ended.size(); ++i) {
    for (const v1::Artifact& artifact : ended[i].artifacts()) bytes[i] += artifact.size_bytes();
    total_bytes += bytes[i];
  }
  for (size_t i = 0; i < ended.size(); ++i) {
    if (options_.retention_age.count() > 0 && ended[i].finished_at() < finished_before) {
      doomed.emplace_back(ended[i].job_id(), "older than --retention-days");
    } else if (options_.max_results_bytes > 0 && total_bytes > options_.max_results_bytes) {
      doomed.emplace_back(ended[i].job_id(), "results over --max-state-gb");
    } else {
      continue;
    }
    total_bytes -= bytes[i];
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [job_id, why] : doomed) {
    if (absl::Status deleted = DeleteLocked(job_id, why); !deleted.ok() && !absl::IsNotFound(deleted)) {
      spdlog::warn("retention: cannot delete {}: {}", job_id, std::string(deleted.message()));
    }
  }
}

void JobManager::ReapLocked() {
  const auto now = std::chrono::steady_clock::now();
  const google::protobuf::Timestamp expired_before =
      TimeUtil::GetCurrentTime() - TimeUtil::SecondsToDuration(options_.awaiting_data_ttl.count());
  std::vector<std::string> expired;
  for (auto& [job_id, active] : active_) {
    const v1::Job job = *registry_.Get(job_id);
    if (job.state() != v1::JOB_STATE_AWAITING_DATA) continue;
    if (active.stream_context != nullptr && now - active.stream_active_at > options_.stream_idle_timeout) {
      spdlog::warn("job {}: its calibration stream sent nothing for {} s (--stream-idle-timeout): cancelled",
                   job_id, options_.stream_idle_timeout.count());
      // The pending read then ends, and the reactor releases the claim as for any short stream.
      active.stream_context->TryCancel();
      active.stream_context = nullptr;
    }
    if (!active.stream_claimed && job.created_at() < expired_before) expired.push_back(job_id);
  }
  for (const std::string& job_id : expired) {
    FailLocked(job_id, absl::StrCat("no complete calibration stream arrived within ",
                                    options_.awaiting_data_ttl.count(), " s of submission (--awaiting-data-ttl)"));
  }
}

}  // namespace ptq::server
