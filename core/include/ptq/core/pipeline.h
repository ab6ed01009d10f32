#ifndef PTQ_CORE_PIPELINE_H_
#define PTQ_CORE_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ptq/core/dataset.h"
#include "ptq/core/ptq_config.h"
#include "ptq/core/quantization_session.h"
#include "ptq/core/report.h"
#include "ptq/core/result_directory.h"

namespace ptq::core {

// One quantization job, resolved: every path checked, every default filled in.
struct PipelineJob {
  std::string model_path;
  // The model file's sha256 when the caller knows it (a content-addressed store); else hashed.
  std::string model_sha256;
  PtqConfig ptq;
  std::string device = "cpu";  // "cpu" or "cuda:N"
  // Opens the calibration data; called once. It yields `calibration_batches` batches.
  std::function<absl::StatusOr<std::unique_ptr<BatchSource>>()> open_calibration;
  int64_t calibration_batches = 0;
  // calibration.from_job: that job's calibration_state.pt, restored instead of calibrating
  // (open_calibration is not called), and the job's id for report.json.
  std::string calibration_state_path;
  std::string calibration_from_job;
  std::optional<DataSpec> evaluation;  // no evaluation when absent
  std::string config_json;             // the job config as accepted, for report.json
};

// The stages of a run, in order.
enum class PipelineStage { kCalibrating, kExporting, kEvaluating };

struct PipelineCallbacks {
  // The run enters a stage with `total` steps of `unit` ("steps", "images").
  std::function<void(PipelineStage stage, int64_t total, const std::string& unit)> enter_stage;
  ProgressCallback progress;
  const std::atomic<bool>* cancelled = nullptr;
};

struct PipelineTimings {
  double model_load_seconds = 0;  // part of calibration_seconds: reading and importing the model
  double calibration_seconds = 0;
  double export_seconds = 0;
  double evaluation_seconds = 0;
  double total_seconds = 0;
};

struct PipelineResult {
  std::vector<VariantAccuracy> metrics;  // empty without an evaluation
  PipelineTimings timings;
  Provenance provenance;  // its calibration_images: what the calibration data yielded
  std::vector<ManifestEntry> artifacts;  // the published directory's MANIFEST
  // The calibrated session, for later evaluations of the simulated int8 model.
  std::shared_ptr<QuantizationSession> session;
};

// The whole walk from model file to published result directory: load and calibrate, export
// the artifacts (WriteArtifacts), evaluate fp32, simulated and the exported int8 file (when
// `job.evaluation` is set), write report.json and MANIFEST, and publish `destination` in one
// rename. The directory is built in `staging`, which is removed whatever happens; a
// `destination` left by an earlier, interrupted run is replaced. Errors name the stage that
// failed; CANCELLED once `callbacks.cancelled` is set. Nothing is left at `destination`
// unless it succeeds.
absl::StatusOr<PipelineResult> RunPipeline(const PipelineJob& job, const std::string& staging,
                                           const std::string& destination, const PipelineCallbacks& callbacks);

}  // namespace ptq::core

#endif  // PTQ_CORE_PIPELINE_H_
