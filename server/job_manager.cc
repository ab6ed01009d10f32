#include "job_manager.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "job_protos.h"
#include "job_runner.h"
#include "job_states.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
constexpr size_t kMaxListResponseBytes = size_t{1} << 20;
constexpr size_t kMaxIdempotencyKeyLength = 256;
constexpr size_t kMaxErrorLength = 4096;
constexpr int kMaxAttempts = 3;
constexpr char kRestartedReason[] =
    "server restarted while the job held streamed calibration data in memory; submit it again";

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

}  // namespace

JobManager::JobManager(JobManagerOptions options, JobStore* store, const ModelStore* models)
    : options_(std::move(options)),
      store_(store),
      models_(models),
      queue_(options_.worker_devices, options_.worker_nice),
      evaluations_(
          JobEvaluations::Options{options_.results_dir, options_.data_root, options_.cached_sessions}, models,
          [this](const std::string& job_id) { return Get(job_id); },
          [this](const std::string& job_id, const std::vector<core::ManifestEntry>& artifacts) {
            std::lock_guard<std::mutex> lock(mutex_);
            ChangeLocked(jobs_.at(job_id), [&](v1::Job& job) { SetArtifacts(artifacts, job); });
          }) {}

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(JobManagerOptions options, JobStore* store,
                                                              const ModelStore* models) {
  if (options.worker_devices.empty()) return absl::InvalidArgumentError("the worker pool needs at least one worker");
  std::error_code error;
  fs::create_directories(options.results_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create results folder '", options.results_dir.string(), "': ", error.message()));
  }
  std::unique_ptr<JobManager> manager(new JobManager(std::move(options), store, models));
  if (absl::Status recovered = manager->Recover(); !recovered.ok()) return recovered;
  manager->queue_.Start();
  manager->reaper_ = std::thread([m = manager.get()] { m->RunReaper(); });
  return manager;
}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::Recover() {
  // Staging folders belong to runs a stop interrupted; their jobs run again from the start.
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.results_dir, error)) {
    if (entry.path().filename().string().rfind(kStagingPrefix, 0) == 0) fs::remove_all(entry.path(), error);
  }
  absl::StatusOr<std::vector<int64_t>> quarantined = store_->QuarantineUnreadableRows();
  if (!quarantined.ok()) return quarantined.status();
  for (int64_t sequence : *quarantined) {
    spdlog::error("job row {} of the job database does not parse: moved to its quarantined_jobs table", sequence);
  }
  absl::StatusOr<std::vector<JobStore::Row>> rows = store_->LoadAll();
  if (!rows.ok()) return rows.status();
  std::lock_guard<std::mutex> lock(mutex_);
  for (JobStore::Row& row : *rows) {
    const std::string job_id = row.job.job_id();
    JobRecord& record = jobs_[job_id];
    record.sequence = row.sequence;
    record.job = std::move(row.job);
    job_by_sequence_[row.sequence] = job_id;
    if (!record.job.idempotency_key().empty()) job_by_idempotency_key_[record.job.idempotency_key()] = job_id;
    const v1::JobState state = record.job.state();
    if (IsFinalState(state)) continue;
    v1::JobConfig config = record.job.config();
    absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
    if (!resolved.ok()) {
      FailLocked(record, absl::StrCat("its config no longer resolves on this server: ", resolved.status().message()));
      continue;
    }
    record.resolved = std::make_shared<const ResolvedJob>(*std::move(resolved));
    if (state == v1::JOB_STATE_AWAITING_DATA) continue;
    const std::string& source = record.job.config().calibration().source();
    if (source == "server" && record.job.attempts() >= kMaxAttempts) {
      FailLocked(record, absl::StrCat("the server stopped while running this job ", record.job.attempts(),
                                      " times; it is not run again (see the server's log for the cause)"));
    } else if (source == "server") {
      ChangeLocked(record, [](v1::Job& job) {
        job.set_state(v1::JOB_STATE_QUEUED);
        job.clear_progress();
        job.clear_started_at();
      });
      QueueRunLocked(job_id);
      spdlog::info("job {} re-queued after a restart (was {})", job_id, StateName(state));
    } else {
      FailLocked(record, kRestartedReason);
    }
  }
  return absl::OkStatus();
}

void JobManager::ChangeLocked(JobRecord& record, const std::function<void(v1::Job&)>& change) {
  change(record.job);
  *record.job.mutable_updated_at() = TimeUtil::GetCurrentTime();
  if (absl::Status stored = store_->Update(record.job); !stored.ok()) {
    spdlog::error("job {}: cannot store its change: {}", record.job.job_id(), stored.ToString());
  }
  NotifyLocked(record);
}

void JobManager::ReportProgressLocked(JobRecord& record, int64_t done, int64_t total) {
  record.job.mutable_progress()->set_done(done);
  record.job.mutable_progress()->set_total(total);
  *record.job.mutable_updated_at() = TimeUtil::GetCurrentTime();
  NotifyLocked(record);
}

void JobManager::NotifyLocked(const JobRecord& record) {
  const auto [begin, end] = listeners_.equal_range(record.job.job_id());
  for (auto it = begin; it != end; ++it) it->second.second(record.job);
}

void JobManager::FailLocked(JobRecord& record, const std::string& reason) {
  const v1::JobState before = record.job.state();
  ChangeLocked(record, [&reason](v1::Job& job) {
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(reason);
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
  spdlog::warn("job {} {} -> FAILED: {}", record.job.job_id(), StateName(before), reason);
}

void JobManager::EnterStateLocked(JobRecord& record, v1::JobState state, int64_t total, const std::string& unit) {
  const v1::JobState before = record.job.state();
  ChangeLocked(record, [&](v1::Job& job) {
    job.set_state(state);
    job.mutable_progress()->set_done(0);
    job.mutable_progress()->set_total(total);
    job.mutable_progress()->set_unit(unit);
  });
  spdlog::info("job {} {} -> {}", record.job.job_id(), StateName(before), StateName(state));
}

int JobManager::WaitingJobsLocked() const {
  int waiting = 0;
  for (const auto& [id, record] : jobs_) {
    waiting += record.job.state() == v1::JOB_STATE_QUEUED || record.job.state() == v1::JOB_STATE_AWAITING_DATA;
  }
  return waiting;
}

absl::StatusOr<v1::Job> JobManager::Submit(v1::JobConfig config, const std::string& idempotency_key,
                                           bool validate_only) {
  if (idempotency_key.size() > kMaxIdempotencyKeyLength) {
    return absl::InvalidArgumentError(absl::StrCat("idempotency_key is ", idempotency_key.size(),
                                                   " characters long; at most ", kMaxIdempotencyKeyLength,
                                                   " are accepted"));
  }
  absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, options_.data_root);
  if (!resolved.ok()) return resolved.status();
  if (!idempotency_key.empty() && !validate_only) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = job_by_idempotency_key_.find(idempotency_key);
    if (found != job_by_idempotency_key_.end()) {
      const v1::Job& existing = jobs_.at(found->second).job;
      if (!google::protobuf::util::MessageDifferencer::Equals(existing.config(), config)) {
        return absl::AlreadyExistsError(absl::StrCat("idempotency_key '", idempotency_key, "' was used for job ",
                                                     existing.job_id(), " with a different config"));
      }
      return existing;
    }
  }
  absl::StatusOr<v1::Model> model = models_->Get(config.model().model_id());
  if (!model.ok() && !(validate_only && absl::IsNotFound(model.status()))) {
    return absl::Status(model.status().code(),
                        absl::StrCat("model.model_id: ", model.status().message(), " (upload it first)"));
  }
  if (!resolved->streamed) {
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
  if (!idempotency_key.empty() && job_by_idempotency_key_.count(idempotency_key) > 0) {
    return jobs_.at(job_by_idempotency_key_.at(idempotency_key)).job;  // a concurrent twin won
  }
  if (WaitingJobsLocked() >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the job queue is full (", options_.max_queue, " jobs waiting); try again later"));
  }
  v1::Job job;
  job.set_job_id(NewJobId());
  job.set_name(config.name());
  job.set_idempotency_key(idempotency_key);
  job.set_state(resolved->streamed ? v1::JOB_STATE_AWAITING_DATA : v1::JOB_STATE_QUEUED);
  job.mutable_progress()->set_total(resolved->quant_batch_num);
  job.mutable_progress()->set_unit("batches");
  *job.mutable_config() = std::move(config);
  *job.mutable_created_at() = TimeUtil::GetCurrentTime();
  *job.mutable_updated_at() = job.created_at();
  absl::StatusOr<int64_t> sequence = store_->Insert(job);
  if (!sequence.ok()) return sequence.status();
  JobRecord& record = jobs_[job.job_id()];
  record.sequence = *sequence;
  record.job = job;
  record.resolved = std::make_shared<const ResolvedJob>(*std::move(resolved));
  job_by_sequence_[*sequence] = job.job_id();
  if (!idempotency_key.empty()) job_by_idempotency_key_[idempotency_key] = job.job_id();
  if (!record.resolved->streamed) QueueRunLocked(job.job_id());
  spdlog::info("job {} submitted ('{}', model {}, {} {}, {} calibration) -> {}", job.job_id(), job.name(),
               job.config().model().model_id().substr(0, 12), job.config().ptq().activation_quantizer(),
               job.config().ptq().weight_quantizer(), job.config().calibration().source(), StateName(job.state()));
  return job;
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
  return found->second.job;
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(const v1::ListJobsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size must be in [0, ", kMaxPageSize, "], got ",
                                                   request.page_size()));
  }
  const int page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  int64_t before = INT64_MAX;  // the page token: the sequence number of the last job sent
  if (!request.page_token().empty() && (!absl::SimpleAtoi(request.page_token(), &before) || before <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("page_token '", request.page_token(), "' is not one ListJobs gave"));
  }
  v1::ListJobsResponse response;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = std::make_reverse_iterator(job_by_sequence_.lower_bound(before)); it != job_by_sequence_.rend();
       ++it) {
    const v1::Job& job = jobs_.at(it->second).job;
    if (!request.states().empty() &&
        std::find(request.states().begin(), request.states().end(), job.state()) == request.states().end()) {
      continue;
    }
    // Full by count, or by bytes: a page stays far below gRPC's default 4 MiB receive limit.
    if (response.jobs_size() == page_size ||
        (response.jobs_size() > 0 && response.ByteSizeLong() + job.ByteSizeLong() > kMaxListResponseBytes)) {
      response.set_next_page_token(absl::StrCat(jobs_.at(response.jobs().rbegin()->job_id()).sequence));
      break;
    }
    *response.add_jobs() = job;
  }
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
  JobRecord& record = found->second;
  const v1::JobState state = record.job.state();
  if (IsFinalState(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " already ended (", StateName(state), "); nothing to cancel"));
  }
  record.cancelled->store(true);
  if (state == v1::JOB_STATE_QUEUED || state == v1::JOB_STATE_AWAITING_DATA) {
    queue_.Remove(job_id);
    ReleaseStreamLocked(record);
    ChangeLocked(record, [](v1::Job& job) {
      job.set_state(v1::JOB_STATE_CANCELLED);
      *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
    });
    spdlog::info("job {} {} -> CANCELLED", job_id, StateName(state));
  } else {
    spdlog::info("job {} cancel requested while {}", job_id, StateName(state));
  }
  return record.job;
}

absl::StatusOr<int64_t> JobManager::Watch(const std::string& job_id, Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
  listener(found->second.job);
  const int64_t watch_id = next_watch_id_++;
  listeners_.emplace(job_id, std::make_pair(watch_id, std::move(listener)));
  return watch_id;
}

void JobManager::Unwatch(int64_t watch_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->second.first == watch_id) {
      listeners_.erase(it);
      return;
    }
  }
}

absl::StatusOr<StreamExpectation> JobManager::BeginCalibrationStream(const std::string& job_id,
                                                                     grpc::CallbackServerContext* context) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
  JobRecord& record = found->second;
  if (record.job.state() != v1::JOB_STATE_AWAITING_DATA) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " is ", StateName(record.job.state()),
                                                      "; calibration batches are accepted only while AWAITING_DATA"));
  }
  if (record.stream_claimed) {
    return absl::AbortedError(absl::StrCat("another StreamCalibrationBatch call for job ", job_id, " is in progress"));
  }
  record.stream_claimed = true;
  record.stream_context = context;
  record.stream_active_at = std::chrono::steady_clock::now();
  const ResolvedJob& resolved = *record.resolved;
  return StreamExpectation{resolved.preprocess, resolved.quant_batch_num, resolved.quant_batch_size};
}

absl::Status JobManager::CompleteCalibrationStream(const std::string& job_id,
                                                   std::unique_ptr<core::InMemoryBatches> data) {
  std::lock_guard<std::mutex> lock(mutex_);
  JobRecord& record = jobs_.at(job_id);
  record.stream_claimed = false;
  record.stream_context = nullptr;
  if (record.job.state() != v1::JOB_STATE_AWAITING_DATA) {
    ReleaseStreamLocked(record);
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " became ", StateName(record.job.state()), " while its data was streaming"));
  }
  record.streamed = std::move(data);
  EnterStateLocked(record, v1::JOB_STATE_QUEUED, record.job.config().calibration().quant_batch_num(), "batches");
  QueueRunLocked(job_id);
  return absl::OkStatus();
}

void JobManager::AbandonCalibrationStream(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  JobRecord& record = jobs_.at(job_id);
  record.stream_claimed = false;
  record.stream_context = nullptr;
  ReleaseStreamLocked(record);
}

absl::Status JobManager::HoldStreamBytes(const std::string& job_id, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes > options_.max_stream_bytes - stream_bytes_held_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this batch would take the calibration data held for stream jobs past --max-stream-mb (",
        options_.max_stream_bytes >> 20, " MiB); try again when queued stream jobs have run"));
  }
  stream_bytes_held_ += bytes;
  jobs_.at(job_id).stream_bytes += bytes;
  return absl::OkStatus();
}

void JobManager::ReleaseStreamLocked(JobRecord& record) {
  record.streamed.reset();
  stream_bytes_held_ -= record.stream_bytes;
  record.stream_bytes = 0;
}

void JobManager::NoteStreamActivity(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  jobs_.at(job_id).stream_active_at = std::chrono::steady_clock::now();
}

bool JobManager::QueueRunLocked(const std::string& job_id) {
  return queue_.Push(job_id, [this, job_id](const std::string& device) {
    // Core turns what LibTorch and OpenCV throw into statuses; this is the last line, so that
    // nothing a job does can end the process.
    try {
      RunJob(job_id, device);
    } catch (const std::exception& e) {
      spdlog::error("worker {}: unexpected exception: {}", device, e.what());
      FinishJob(job_id, absl::InternalError(absl::StrCat("unexpected error: ", e.what())), device);
    }
  });
}

void JobManager::RunJob(const std::string& job_id, const std::string& device) {
  JobRun run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    JobRecord& record = jobs_.at(job_id);
    if (record.job.state() != v1::JOB_STATE_QUEUED) return;
    run.job_id = job_id;
    run.config = record.job.config();
    run.resolved = *record.resolved;
    run.streamed = record.streamed;
    run.cancelled = record.cancelled.get();
    ChangeLocked(record, [](v1::Job& job) {
      *job.mutable_started_at() = TimeUtil::GetCurrentTime();
      job.set_attempts(job.attempts() + 1);
    });
  }
  run.model_path = models_->ModelFile(run.config.model().model_id()).string();
  run.device = device;
  run.results_dir = options_.results_dir;
  run.enter_state = [&](v1::JobState state, int64_t total, const std::string& unit) {
    std::lock_guard<std::mutex> lock(mutex_);
    EnterStateLocked(jobs_.at(job_id), state, total, unit);
  };
  run.progress = [&](int64_t done, int64_t total) {
    std::lock_guard<std::mutex> lock(mutex_);
    ReportProgressLocked(jobs_.at(job_id), done, total);
  };
  absl::StatusOr<JobOutput> output = RunQuantJob(run);
  if (!output.ok()) {
    FinishJob(job_id, output.status(), device);
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  JobRecord& record = jobs_.at(job_id);
  ReleaseStreamLocked(record);
  evaluations_.KeepSession(job_id, output->session);
  const v1::JobState before = record.job.state();
  ChangeLocked(record, [&](v1::Job& job) {
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    job.mutable_progress()->set_done(job.progress().total());
    v1::Metrics* metrics = job.mutable_metrics();
    metrics->Clear();
    for (const core::VariantAccuracy& accuracy : output->metrics) *metrics->add_variants() = ToProto(accuracy);
    *metrics->mutable_timings() = output->timings;
    metrics->set_dataset(job.config().evaluate().path());
    SetArtifacts(output->artifacts, job);
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
  spdlog::info("job {} {} -> SUCCEEDED in {:.1f} s on {}", job_id, StateName(before),
               output->timings.total_seconds(), device);
}

void JobManager::FinishJob(const std::string& job_id, const absl::Status& status, const std::string& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  JobRecord& record = jobs_.at(job_id);
  const v1::JobState before = record.job.state();
  if (absl::IsCancelled(status) && stopping_) {
    // Interrupted by a stop, not by its user: the stored state stays, so a restart re-queues it,
    // and the run is not counted against the job's attempts.
    ChangeLocked(record, [](v1::Job& job) { job.set_attempts(std::max(0, job.attempts() - 1)); });
    spdlog::info("job {} interrupted while {} by the server stopping", job_id, StateName(before));
    return;
  }
  ReleaseStreamLocked(record);
  const bool cancelled = absl::IsCancelled(status) && record.cancelled->load();
  ChangeLocked(record, [&](v1::Job& job) {
    job.set_state(cancelled ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_FAILED);
    if (!cancelled) job.set_error(std::string(status.message().substr(0, kMaxErrorLength)));
    *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  });
  if (cancelled) {
    spdlog::info("job {} {} -> CANCELLED", job_id, StateName(before));
  } else {
    spdlog::warn("job {} {} -> FAILED on {}: {}", job_id, StateName(before), device, std::string(status.message()));
  }
}

absl::Status JobManager::Evaluate(const v1::EvaluateRequest& request, std::shared_ptr<const std::atomic<bool>> cancelled,
                                  EvaluateProgress progress, EvaluateDone done) {
  if (absl::Status checked = evaluations_.Check(request); !checked.ok()) return checked;
  std::lock_guard<std::mutex> lock(mutex_);
  const bool queued = !stopping_ && queue_.Push("", [this, request, cancelled, progress, done](const std::string&) {
    if (cancelled->load()) return done(absl::CancelledError("evaluation cancelled"));
    absl::StatusOr<v1::Metrics> metrics;
    try {
      metrics = evaluations_.Run(request, cancelled.get(), progress);
    } catch (const std::exception& e) {  // the caller is answered whatever happens
      metrics = absl::InternalError(absl::StrCat("unexpected error: ", e.what()));
    }
    done(std::move(metrics));
  });
  if (!queued) return absl::UnavailableError("the server is shutting down");
  return absl::OkStatus();
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
    for (auto& [id, record] : jobs_) {
      if (IsRunningState(record.job.state())) record.cancelled->store(true);
    }
  }
  reaper_wake_.notify_all();
  queue_.Stop();
  if (reaper_.joinable()) reaper_.join();
}

void JobManager::RunReaper() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    ReapLocked();
    reaper_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

void JobManager::ReapLocked() {
  const auto now = std::chrono::steady_clock::now();
  const google::protobuf::Timestamp expired_before =
      TimeUtil::GetCurrentTime() - TimeUtil::SecondsToDuration(options_.awaiting_data_ttl.count());
  for (auto& [job_id, record] : jobs_) {
    if (record.job.state() != v1::JOB_STATE_AWAITING_DATA) continue;
    if (record.stream_context != nullptr && now - record.stream_active_at > options_.stream_idle_timeout) {
      spdlog::warn("job {}: its calibration stream sent nothing for {} s (--stream-idle-timeout): cancelled",
                   job_id, options_.stream_idle_timeout.count());
      // The pending read then ends, and the reactor releases the claim as for any short stream.
      record.stream_context->TryCancel();
      record.stream_context = nullptr;
    }
    if (!record.stream_claimed && record.job.created_at() < expired_before) {
      FailLocked(record, absl::StrCat("no complete calibration stream arrived within ",
                                      options_.awaiting_data_ttl.count(), " s of submission (--awaiting-data-ttl)"));
    }
  }
}

}  // namespace ptq::server
