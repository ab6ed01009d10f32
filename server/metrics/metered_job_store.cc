#include "metrics/metered_job_store.h"

#include <utility>

namespace ptq::server {
namespace {

template <typename Result>
Result Counted(Result result, ServiceMetrics* metrics, absl::string_view operation) {
  if (!result.ok()) metrics->StoreError(operation);
  return result;
}

}  // namespace

MeteredJobStore::MeteredJobStore(std::unique_ptr<JobStore> store, ServiceMetrics* metrics)
    : store_(std::move(store)), metrics_(metrics) {}

absl::StatusOr<int64_t> MeteredJobStore::Insert(const v1::Job& job) {
  return Counted(store_->Insert(job), metrics_, "insert");
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

}  // namespace ptq::server
