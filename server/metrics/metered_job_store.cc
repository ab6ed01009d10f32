#include "metrics/metered_job_store.h"

#include <utility>

namespace ptq::server {
namespace {

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

template <typename Result>
Result Counted(Result result, ServiceMetrics* metrics, absl::string_view operation) {
  const absl::Status& status = StatusOf(result);
  if (!status.ok() && !absl::IsAborted(status) && !absl::IsAlreadyExists(status)) metrics->StoreError(operation);
  return result;
}

}  // namespace

MeteredJobStore::MeteredJobStore(std::unique_ptr<JobStore> store, ServiceMetrics* metrics)
    : store_(std::move(store)), metrics_(metrics) {}

absl::StatusOr<int64_t> MeteredJobStore::Insert(const v1::Job& job) {
  return Counted(store_->Insert(job), metrics_, "insert");
}

absl::StatusOr<std::optional<JobStore::Row>> MeteredJobStore::FindByIdempotencyKey(const std::string& tenant,
                                                                                  const std::string& key) {
  return Counted(store_->FindByIdempotencyKey(tenant, key), metrics_, "idempotency_key");
}

absl::Status MeteredJobStore::Update(const v1::Job& job) { return Counted(store_->Update(job), metrics_, "update"); }

absl::Status MeteredJobStore::Delete(const std::string& job_id) {
  return Counted(store_->Delete(job_id), metrics_, "delete");
}

absl::StatusOr<std::vector<JobStore::Row>> MeteredJobStore::LoadAll() {
  return Counted(store_->LoadAll(), metrics_, "load");
}

absl::StatusOr<std::vector<int64_t>> MeteredJobStore::QuarantineUnreadableRows() {
  return Counted(store_->QuarantineUnreadableRows(), metrics_, "quarantine");
}

absl::StatusOr<std::optional<JobStore::Claim>> MeteredJobStore::ClaimNext(const std::string& owner,
                                                                         std::chrono::milliseconds ttl) {
  return Counted(store_->ClaimNext(owner, ttl), metrics_, "claim");
}

absl::StatusOr<bool> MeteredJobStore::RenewLease(const Lease& lease, std::chrono::milliseconds ttl) {
  return Counted(store_->RenewLease(lease, ttl), metrics_, "renew");
}

absl::Status MeteredJobStore::UpdateLeased(const Lease& lease, const v1::Job& job) {
  return Counted(store_->UpdateLeased(lease, job), metrics_, "update");
}

absl::Status MeteredJobStore::Finish(const Lease& lease, const v1::Job& job,
                                     const std::function<absl::Status()>& publish) {
  return Counted(store_->Finish(lease, job, publish), metrics_, "finish");
}

absl::Status MeteredJobStore::UpdateIfWaiting(const v1::Job& job) {
  return Counted(store_->UpdateIfWaiting(job), metrics_, "update");
}

absl::Status MeteredJobStore::RequestCancel(const std::string& job_id) {
  return Counted(store_->RequestCancel(job_id), metrics_, "cancel");
}

absl::StatusOr<JobStore::Changes> MeteredJobStore::ChangesSince(int64_t version) {
  return Counted(store_->ChangesSince(version), metrics_, "changes");
}

}  // namespace ptq::server
