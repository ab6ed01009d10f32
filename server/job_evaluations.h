#ifndef PTQ_SERVER_JOB_EVALUATIONS_H_
#define PTQ_SERVER_JOB_EVALUATIONS_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model_store.h"
#include "ptq/core/quantization_session.h"
#include "ptq/core/result_directory.h"
#include "ptq/v1/service.pb.h"

namespace ptq::server {

// Evaluations (the Evaluate RPC) of finished jobs and of uploaded models: the request checked,
// its models run (by the caller, on a worker), the metrics added to the job's report.json. The
// calibrated sessions of the last jobs are kept here so `int8_simulated` can run; older jobs
// offer fp32 and int8 from their files. Thread-safe.
class JobEvaluations {
 public:
  struct Options {
    std::filesystem::path results_dir;
    std::string data_root;
    int cached_sessions = 4;
  };
  using Progress = std::function<void(int64_t done, int64_t total)>;
  using GetJob = std::function<absl::StatusOr<v1::Job>(const std::string& job_id)>;
  // The job's result directory changed (report.json rewritten): its new MANIFEST.
  using ArtifactsChanged = std::function<void(const std::string& job_id, const std::vector<core::ManifestEntry>&)>;

  JobEvaluations(Options options, const ModelStore* models, GetJob get_job, ArtifactsChanged artifacts_changed);

  // Keeps a finished job's calibrated session; past cached_sessions the oldest goes.
  void KeepSession(const std::string& job_id, std::shared_ptr<core::QuantizationSession> session);
  // Drops the job's kept session, if any (the job was deleted).
  void ForgetSession(const std::string& job_id);

  // What can be said before running: INVALID_ARGUMENT for unknown variants, a negative limit
  // or no target; NOT_FOUND for an unknown job or model; FAILED_PRECONDITION for a job that
  // has not SUCCEEDED; ResolveDataPath's statuses for the dataset.
  absl::Status Check(const v1::EvaluateRequest& request) const;

  // Runs a checked request: the metrics of the variants asked for (fp32 always runs, as the
  // agreement reference), added to the job's report.json. FAILED_PRECONDITION for
  // int8_simulated of a job whose session is no longer kept; CANCELLED once `cancelled` is set.
  absl::StatusOr<v1::Metrics> Run(const v1::EvaluateRequest& request, const std::atomic<bool>* cancelled,
                                  const Progress& progress);

 private:
  struct Cached {
    std::string job_id;
    std::shared_ptr<core::QuantizationSession> session;
    std::shared_ptr<std::mutex> in_use = std::make_shared<std::mutex>();
  };
  std::shared_ptr<core::QuantizationSession> CachedSession(const std::string& job_id,
                                                           std::shared_ptr<std::mutex>* in_use);

  const Options options_;
  const ModelStore* models_;
  const GetJob get_job_;
  const ArtifactsChanged artifacts_changed_;
  std::mutex sessions_mutex_;
  std::list<Cached> sessions_;  // most recent first
  // Serializes rewrites of report.json.
  std::mutex report_mutex_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_EVALUATIONS_H_
