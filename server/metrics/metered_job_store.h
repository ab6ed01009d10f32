#ifndef PTQ_SERVER_METRICS_METERED_JOB_STORE_H_
#define PTQ_SERVER_METRICS_METERED_JOB_STORE_H_

#include <memory>

#include "job_store.h"
#include "metrics/service_metrics.h"

namespace ptq::server {

// A JobStore that counts the errors of the store it wraps (ptq_job_store_errors_total) and
// otherwise passes every call through: the registry logs a failed update and carries on, so
// without the count an operator would not see a store that keeps failing. ABORTED (a lease
// lost, a job a worker holds) and ALREADY_EXISTS (an idempotency key another api replica
// used) are how the roles share jobs, not failures, and are not counted.
class MeteredJobStore : public JobStore {
 public:
  MeteredJobStore(std::unique_ptr<JobStore> store, ServiceMetrics* metrics);

  absl::StatusOr<int64_t> Insert(const v1::Job& job) override;
  absl::Status Update(const v1::Job& job) override;
  absl::Status Delete(const std::string& job_id) override;
  absl::StatusOr<std::vector<Row>> LoadAll() override;
  absl::StatusOr<std::vector<int64_t>> QuarantineUnreadableRows() override;
  absl::StatusOr<std::optional<Row>> FindByIdempotencyKey(const std::string& tenant, const std::string& key) override;
  absl::StatusOr<std::optional<Claim>> ClaimNext(const std::string& owner, std::chrono::milliseconds ttl) override;
  absl::StatusOr<bool> RenewLease(const Lease& lease, std::chrono::milliseconds ttl) override;
  absl::Status UpdateLeased(const Lease& lease, const v1::Job& job) override;
  absl::Status Finish(const Lease& lease, const v1::Job& job, const std::function<absl::Status()>& publish) override;
  absl::Status UpdateIfWaiting(const v1::Job& job) override;
  absl::Status RequestCancel(const std::string& job_id) override;
  absl::StatusOr<Changes> ChangesSince(int64_t version) override;

 private:
  const std::unique_ptr<JobStore> store_;
  ServiceMetrics* const metrics_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_METRICS_METERED_JOB_STORE_H_
