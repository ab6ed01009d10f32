#include "job_registry.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "job_states.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
using google::protobuf::util::TimeUtil;

namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;
constexpr size_t kMaxListResponseBytes = size_t{1} << 20;

absl::Status NoSuchJob(const std::string& job_id) {
  return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
}

// Where a tenant's idempotency key is filed; tenant names hold no newline.
std::string TenantKey(const std::string& tenant, const std::string& key) { return absl::StrCat(tenant, "\n", key); }

}  // namespace

JobRegistry::JobRegistry(JobStore* store, std::chrono::milliseconds progress_store_interval)
    : store_(store), progress_store_interval_(progress_store_interval) {}

absl::StatusOr<std::vector<v1::Job>> JobRegistry::Load() {
  absl::StatusOr<std::vector<int64_t>> quarantined = store_->QuarantineUnreadableRows();
  if (!quarantined.ok()) return quarantined.status();
  for (int64_t sequence : *quarantined) {
    spdlog::error("job row {} of the job database does not parse: moved to its quarantined_jobs table", sequence);
  }
  absl::StatusOr<std::vector<JobStore::Row>> rows = store_->LoadAll();
  if (!rows.ok()) return rows.status();
  std::vector<v1::Job> jobs;
  std::lock_guard<std::mutex> lock(mutex_);
  for (JobStore::Row& row : *rows) jobs.push_back(FileLocked(row.sequence, std::move(row.job)));
  return jobs;
}

const v1::Job& JobRegistry::FileLocked(int64_t sequence, v1::Job job) {
  if (job.tenant().empty()) job.set_tenant(kDefaultTenant);
  const std::string job_id = job.job_id();
  job_by_sequence_[sequence] = job_id;
  if (!job.idempotency_key().empty()) job_by_idempotency_key_[TenantKey(job.tenant(), job.idempotency_key())] = job_id;
  Entry& entry = jobs_[job_id];
  entry.sequence = sequence;
  entry.job = std::move(job);
  return entry.job;
}

absl::Status JobRegistry::Remove(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return absl::NotFoundError(absl::StrCat("job '", job_id, "' does not exist"));
  absl::Status deleted = store_->Delete(job_id);
  if (deleted.ok() || absl::IsNotFound(deleted)) ForgetLocked(found);
  return deleted;
}

void JobRegistry::Forget(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto found = jobs_.find(job_id); found != jobs_.end()) ForgetLocked(found);
}

void JobRegistry::ForgetLocked(std::map<std::string, Entry>::iterator entry) {
  const v1::Job& job = entry->second.job;
  if (!job.idempotency_key().empty()) job_by_idempotency_key_.erase(TenantKey(job.tenant(), job.idempotency_key()));
  job_by_sequence_.erase(entry->second.sequence);
  listeners_.erase(job.job_id());
  jobs_.erase(entry);
}

std::vector<v1::Job> JobRegistry::EndedOldestFirst() const {
  std::vector<v1::Job> ended;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [sequence, id] : job_by_sequence_) {
      const v1::Job& job = jobs_.at(id).job;
      if (IsFinalState(job.state())) ended.push_back(job);
    }
  }
  // Stable: jobs that finished within the same clock tick stay in submission order.
  std::stable_sort(ended.begin(), ended.end(), [](const v1::Job& a, const v1::Job& b) {
    return TimeUtil::TimestampToNanoseconds(a.finished_at()) < TimeUtil::TimestampToNanoseconds(b.finished_at());
  });
  return ended;
}

absl::StatusOr<v1::Job> JobRegistry::Add(const v1::Job& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::StatusOr<int64_t> sequence = store_->Insert(job);
  if (sequence.ok()) return FileLocked(*sequence, job);
  if (!absl::IsAlreadyExists(sequence.status()) || job.idempotency_key().empty()) return sequence.status();
  absl::StatusOr<std::optional<JobStore::Row>> twin = store_->FindByIdempotencyKey(job.tenant(), job.idempotency_key());
  if (!twin.ok()) return twin.status();
  if (!twin->has_value()) return sequence.status();  // deleted in between: the insert's error stands
  if (auto known = jobs_.find((*twin)->job.job_id()); known != jobs_.end()) return known->second.job;
  return FileLocked((*twin)->sequence, std::move((*twin)->job));
}

absl::StatusOr<v1::Job> JobRegistry::Get(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return NoSuchJob(job_id);
  return found->second.job;
}

absl::StatusOr<v1::Job> JobRegistry::GetVisible(const std::string& job_id, const TenantScope& scope) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end() || !scope.Sees(found->second.job.tenant())) return NoSuchJob(job_id);
  return found->second.job;
}

std::optional<v1::Job> JobRegistry::FindByIdempotencyKey(const std::string& tenant, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = job_by_idempotency_key_.find(TenantKey(tenant, key));
  if (found == job_by_idempotency_key_.end()) return std::nullopt;
  return jobs_.at(found->second).job;
}

absl::StatusOr<v1::ListJobsResponse> JobRegistry::List(const v1::ListJobsRequest& request,
                                                       const TenantScope& scope) const {
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
    if (!scope.Sees(job.tenant())) continue;
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

int JobRegistry::CountInStates(std::initializer_list<v1::JobState> states) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(std::count_if(jobs_.begin(), jobs_.end(), [&](const auto& id_and_entry) {
    return std::find(states.begin(), states.end(), id_and_entry.second.job.state()) != states.end();
  }));
}

v1::Job JobRegistry::Change(const std::string& job_id, const std::function<void(v1::Job&)>& change) {
  std::lock_guard<std::mutex> lock(mutex_);
  v1::Job& job = jobs_.at(job_id).job;
  change(job);
  *job.mutable_updated_at() = TimeUtil::GetCurrentTime();
  StoreUpdate(job);
  NotifyLocked(job);
  return job;
}

absl::StatusOr<v1::Job> JobRegistry::ChangeIfWaiting(const std::string& job_id,
                                                     const std::function<void(v1::Job&)>& change) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return NoSuchJob(job_id);
  v1::Job job = found->second.job;
  change(job);
  *job.mutable_updated_at() = TimeUtil::GetCurrentTime();
  if (absl::Status stored = store_->UpdateIfWaiting(job); !stored.ok()) return stored;
  found->second.job = job;
  NotifyLocked(job);
  return job;
}

void JobRegistry::Refresh(const std::vector<JobStore::Row>& rows) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (JobStore::Row row : rows) {
    if (row.job.tenant().empty()) row.job.set_tenant(kDefaultTenant);
    auto found = jobs_.find(row.job.job_id());
    if (found == jobs_.end()) {
      FileLocked(row.sequence, std::move(row.job));
      continue;
    }
    v1::Job& job = found->second.job;
    if (IsFinalState(job.state()) && !IsFinalState(row.job.state())) continue;
    if (google::protobuf::util::MessageDifferencer::Equals(job, row.job)) continue;
    job = std::move(row.job);
    NotifyLocked(job);
  }
}

void JobRegistry::ReportProgress(const std::string& job_id, int64_t done, int64_t total) {
  v1::Job to_store;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = jobs_.at(job_id);
    entry.job.mutable_progress()->set_done(done);
    entry.job.mutable_progress()->set_total(total);
    *entry.job.mutable_updated_at() = TimeUtil::GetCurrentTime();
    const auto now = std::chrono::steady_clock::now();
    if (done < total && entry.progress_stored_at.has_value() &&
        now - *entry.progress_stored_at < progress_store_interval_) {
      NotifyLocked(entry.job);
      return;
    }
    entry.progress_stored_at = now;
    to_store = entry.job;
  }
  // Outside the lock, so that reads and other jobs' changes do not wait on the disk; safe
  // because only this thread changes a running job (see the class comment).
  StoreUpdate(to_store);
  std::lock_guard<std::mutex> lock(mutex_);
  NotifyLocked(jobs_.at(job_id).job);
}

absl::StatusOr<int64_t> JobRegistry::Watch(const std::string& job_id, Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return NoSuchJob(job_id);
  listener(found->second.job);
  const int64_t watch_id = next_watch_id_++;
  listeners_.emplace(job_id, std::make_pair(watch_id, std::move(listener)));
  return watch_id;
}

void JobRegistry::Unwatch(int64_t watch_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->second.first == watch_id) {
      listeners_.erase(it);
      return;
    }
  }
}

void JobRegistry::StoreUpdate(const v1::Job& job) const {
  if (absl::Status stored = store_->Update(job); !stored.ok()) {
    spdlog::error("job {}: cannot store its change: {}", job.job_id(), stored.ToString());
  }
}

void JobRegistry::NotifyLocked(const v1::Job& job) const {
  const auto [begin, end] = listeners_.equal_range(job.job_id());
  for (auto it = begin; it != end; ++it) it->second.second(job);
}

}  // namespace ptq::server
