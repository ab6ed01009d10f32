#include "ptq/core/pipeline.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "calibration_fingerprint.h"
#include "ptq/common/build_info.h"
#include "ptq/common/sha256.h"
#include "ptq/core/devices.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status InStage(absl::string_view stage, const absl::Status& status) {
  if (status.ok() || absl::IsCancelled(status)) return status;
  return absl::Status(status.code(), absl::StrCat(stage, ": ", status.message()));
}

bool IsCancelled(const PipelineCallbacks& callbacks) {
  return callbacks.cancelled != nullptr && callbacks.cancelled->load();
}

// Removes the staging folder on every way out of RunPipeline.
struct StagingFolder {
  fs::path path;
  ~StagingFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

RunReport ReportOf(const PipelineJob& job, const PipelineResult& result) {
  const QuantizationSession& session = *result.session;
  RunReport report;
  report.config_json = job.config_json;
  report.provenance = result.provenance;
  report.engine = job.ptq.backend;
  report.onednn_isa = OnednnInstructionSet();
  report.metrics = result.metrics;
  const PipelineTimings& timings = result.timings;
  report.timings_seconds = {{"calibration", timings.calibration_seconds},
                            {"model_load", timings.model_load_seconds},
                            {"export", timings.export_seconds},
                            {"evaluation", timings.evaluation_seconds},
                            {"total", timings.total_seconds}};
  report.layers = session.LayerSqnr();
  report.held_out = session.HeldOut();
  report.quantizer_trials = session.ActivationQuantizerTrials();
  report.activation_quantizer_used = session.ActivationQuantizerUsed();
  report.sensitivity = session.Sensitivity();
  report.error_sources = session.ErrorSourcesOnHeldOut();
  report.budget = session.AccuracyBudget();
  return report;
}

}  // namespace

absl::StatusOr<PipelineResult> RunPipeline(const PipelineJob& job, const std::string& staging_path,
                                           const std::string& destination, const PipelineCallbacks& callbacks) {
  const auto run_start = std::chrono::steady_clock::now();
  PipelineResult result;
  StagingFolder staging{staging_path};
  std::error_code error;
  fs::remove_all(staging.path, error);
  const auto enter = [&](PipelineStage stage, int64_t total, const std::string& unit) {
    if (callbacks.enter_stage) callbacks.enter_stage(stage, total, unit);
  };

  // Steps: the calibration batches, then (with bias correction) one per corrected layer.
  enter(PipelineStage::kCalibrating, job.calibration_batches, "steps");
  auto stage_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<QuantizationSession>> session =
      QuantizationSession::Create(job.model_path, job.ptq, RuntimeOptions{job.device});
  if (!session.ok()) return InStage("loading the model", session.status());
  absl::StatusOr<std::string> model_sha256 =
      job.model_sha256.empty() ? Sha256OfFile(job.model_path) : absl::StatusOr<std::string>(job.model_sha256);
  if (!model_sha256.ok()) return InStage("hashing the model", model_sha256.status());
  result.provenance.ptq_version = Version();
  result.provenance.commit = BuildCommit();
  result.provenance.libtorch = LibTorchVersion();
  result.provenance.onednn = OnednnVersion();
  result.provenance.model_sha256 = *std::move(model_sha256);
  result.timings.model_load_seconds = SecondsSince(stage_start);
  result.session = *std::move(session);
  if (!job.calibration_state_path.empty()) {
    if (absl::Status restored = result.session->CalibrateFrom(job.calibration_state_path); !restored.ok()) {
      return InStage(absl::StrCat("reusing the calibration of job ", job.calibration_from_job), restored);
    }
    result.provenance.calibration_from_job = job.calibration_from_job;
    if (callbacks.progress) callbacks.progress(job.calibration_batches, job.calibration_batches);
  } else {
    absl::StatusOr<std::unique_ptr<BatchSource>> calibration = job.open_calibration();
    if (!calibration.ok()) return InStage("opening the calibration data", calibration.status());
    FingerprintingSource fingerprinted(**calibration);
    if (absl::Status calibrated = result.session->Calibrate(fingerprinted, callbacks.progress, callbacks.cancelled);
        !calibrated.ok()) {
      return InStage("calibration", calibrated);
    }
    result.provenance.calibration_fingerprint = fingerprinted.HexDigest();
    result.provenance.calibration_images = fingerprinted.num_images();
  }
  result.timings.calibration_seconds = SecondsSince(stage_start);
  if (IsCancelled(callbacks)) return absl::CancelledError("cancelled");

  enter(PipelineStage::kExporting, 1, "steps");
  stage_start = std::chrono::steady_clock::now();
  if (absl::Status written = result.session->WriteArtifacts(staging.path.string()); !written.ok()) {
    return InStage("export", written);
  }
  if (callbacks.progress) callbacks.progress(1, 1);
  result.timings.export_seconds = SecondsSince(stage_start);
  if (IsCancelled(callbacks)) return absl::CancelledError("cancelled");

  if (job.evaluation.has_value()) {
    DataSpec spec = *job.evaluation;
    spec.cancelled = callbacks.cancelled;
    absl::StatusOr<std::unique_ptr<BatchSource>> data = OpenDataset(spec);
    if (!data.ok()) return InStage("opening the evaluation data", data.status());
    enter(PipelineStage::kEvaluating, (*data)->num_images(), "images");
    stage_start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<VariantAccuracy>> metrics = result.session->Evaluate(
        **data, callbacks.progress, callbacks.cancelled, (staging.path / kInt8ModelFile).string());
    if (!metrics.ok()) return InStage("evaluation", metrics.status());
    result.metrics = *std::move(metrics);
    result.timings.evaluation_seconds = SecondsSince(stage_start);
  }
  result.timings.total_seconds = SecondsSince(run_start);

  // A result directory from an earlier, interrupted run of this job was never reported.
  fs::remove_all(destination, error);
  if (absl::Status published = PublishResultDirectory(staging.path.string(), destination, ReportOf(job, result));
      !published.ok()) {
    return InStage("publishing the result directory", published);
  }
  absl::StatusOr<std::vector<ManifestEntry>> artifacts = ReadManifest(destination);
  if (!artifacts.ok()) return InStage("reading the result directory", artifacts.status());
  result.artifacts = *std::move(artifacts);
  return result;
}

}  // namespace ptq::core
