#ifndef PTQ_SERVER_JOB_RUNNER_H_
#define PTQ_SERVER_JOB_RUNNER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "job_config.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "ptq/core/result_directory.h"
#include "ptq/v1/job.pb.h"

namespace ptq::server {

// What every server that runs jobs (role all's JobManager, role worker's JobWorker) holds
// them to:
// a job whose runs were interrupted this often by their server dying is failed, not run again;
inline constexpr int kMaxJobAttempts = 3;
// a job's stored error is cut to this many bytes;
inline constexpr size_t kMaxJobErrorLength = 4096;
// a running job's progress reaches the store at most this often (and at its last step).
inline constexpr std::chrono::seconds kProgressStoreInterval{1};

// Where a stream job's complete calibration data is spooled until the job ends.
inline constexpr char kSpoolSuffix[] = ".spool";
inline std::filesystem::path SpoolPath(const std::filesystem::path& streams_dir, const std::string& job_id) {
  return streams_dir / (job_id + kSpoolSuffix);
}

// One quantization job as a worker runs it.
struct JobRun {
  std::string job_id;
  v1::JobConfig config;  // with its defaults filled in; written to report.json
  ResolvedJob resolved;
  std::string model_path;
  std::string device;  // "cpu" or "cuda:N"
  // Streamed calibration batches; null for the server source.
  std::shared_ptr<const core::InMemoryBatches> streamed;
  // The result directory is published as results_dir/<output_name> (the job id when empty),
  // built in a staging folder next to it that is removed whatever happens.
  std::filesystem::path results_dir;
  std::string output_name;
  const std::atomic<bool>* cancelled = nullptr;
  // The job enters a state (CALIBRATING, EXPORTING, EVALUATING) with `total` steps of `unit`.
  std::function<void(v1::JobState state, int64_t total, const std::string& unit)> enter_state;
  std::function<void(int64_t done, int64_t total)> progress;
};

struct JobOutput {
  std::vector<core::VariantAccuracy> metrics;
  v1::Timings timings;
  int64_t calibration_images = 0;
  std::vector<core::ManifestEntry> artifacts;
  // The calibrated session, for later evaluations of the simulated int8 model.
  std::shared_ptr<core::QuantizationSession> session;
};

// Name of the staging folder of a job's result directory; the server removes leftovers of
// these at start.
inline constexpr char kStagingPrefix[] = ".staging-";

// The job through core::RunPipeline: its config as the pipeline takes it, its stages as job
// states, published as results_dir/<job_id> from the staging folder beside it. Errors say
// which stage failed; CANCELLED once `cancelled` is set. Nothing is left under results_dir
// unless it succeeds.
absl::StatusOr<JobOutput> RunQuantJob(const JobRun& run);

// The job as a successful run ends it: SUCCEEDED, its progress complete, the run's metrics and
// artifacts, finished now.
void RecordSuccess(const JobOutput& output, v1::Job& job);

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_RUNNER_H_
