#include "job_runner.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "ptq/core/devices.h"

namespace ptq::server {
namespace fs = std::filesystem;
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status InStep(const char* step, const absl::Status& status) {
  if (status.ok() || absl::IsCancelled(status)) return status;
  return absl::Status(status.code(), absl::StrCat(step, ": ", status.message()));
}

// Removes the staging folder on every way out of RunQuantJob.
struct StagingFolder {
  fs::path path;
  ~StagingFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

absl::StatusOr<std::unique_ptr<core::BatchSource>> CalibrationData(const JobRun& run) {
  if (run.streamed != nullptr) return run.streamed->Source(0, run.cancelled);
  core::DataSpec spec = run.resolved.calibration;
  spec.cancelled = run.cancelled;
  return core::OpenDataset(spec);
}

}  // namespace

absl::StatusOr<JobOutput> RunQuantJob(const JobRun& run) {
  const auto job_start = std::chrono::steady_clock::now();
  JobOutput output;
  StagingFolder staging{run.results_dir / (kStagingPrefix + run.job_id)};
  std::error_code error;
  fs::remove_all(staging.path, error);

  // Steps: the calibration batches, then (with bias correction) one per corrected layer.
  run.enter_state(v1::JOB_STATE_CALIBRATING, run.resolved.quant_batch_num, "steps");
  auto step_start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<core::QuantizationSession>> session =
      core::QuantizationSession::Create(run.model_path, run.resolved.ptq, core::RuntimeOptions{run.device, 0});
  if (!session.ok()) return InStep("loading the model", session.status());
  output.timings.set_model_load_seconds(SecondsSince(step_start));
  output.session = *std::move(session);
  absl::StatusOr<std::unique_ptr<core::BatchSource>> calibration = CalibrationData(run);
  if (!calibration.ok()) return InStep("opening the calibration data", calibration.status());
  if (absl::Status calibrated = output.session->Calibrate(**calibration, run.progress, run.cancelled);
      !calibrated.ok()) {
    return InStep("calibration", calibrated);
  }
  output.timings.set_calibration_seconds(SecondsSince(step_start));
  if (run.cancelled != nullptr && run.cancelled->load()) return absl::CancelledError("cancelled");

  run.enter_state(v1::JOB_STATE_EXPORTING, 1, "steps");
  step_start = std::chrono::steady_clock::now();
  if (absl::Status written = output.session->WriteArtifacts(staging.path.string());
      !written.ok()) {
    return InStep("export", written);
  }
  run.progress(1, 1);
  output.timings.set_export_seconds(SecondsSince(step_start));
  if (run.cancelled != nullptr && run.cancelled->load()) return absl::CancelledError("cancelled");

  if (run.resolved.evaluation.has_value()) {
    core::DataSpec spec = *run.resolved.evaluation;
    spec.cancelled = run.cancelled;
    absl::StatusOr<std::unique_ptr<core::BatchSource>> data = core::OpenDataset(spec);
    if (!data.ok()) return InStep("opening the evaluation data", data.status());
    run.enter_state(v1::JOB_STATE_EVALUATING, (*data)->num_images(), "images");
    step_start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<core::VariantAccuracy>> metrics = output.session->Evaluate(
        **data, run.progress, run.cancelled, (staging.path / "int8_infer" / "model.pt").string());
    if (!metrics.ok()) return InStep("evaluation", metrics.status());
    output.metrics = *std::move(metrics);
    output.timings.set_evaluation_seconds(SecondsSince(step_start));
  }
  output.timings.set_total_seconds(SecondsSince(job_start));

  core::RunReport report;
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(run.config, &report.config_json, json_options);
  report.engine = run.resolved.ptq.backend;
  report.onednn_isa = core::OnednnInstructionSet();
  report.metrics = output.metrics;
  report.timings_seconds = {{"calibration", output.timings.calibration_seconds()},
                            {"model_load", output.timings.model_load_seconds()},
                            {"export", output.timings.export_seconds()},
                            {"evaluation", output.timings.evaluation_seconds()},
                            {"total", output.timings.total_seconds()}};
  report.layers = output.session->LayerSqnr();
  report.held_out = output.session->HeldOut();
  report.quantizer_trials = output.session->ActivationQuantizerTrials();
  report.activation_quantizer_used = output.session->ActivationQuantizerUsed();
  report.sensitivity = output.session->Sensitivity();
  report.budget = output.session->AccuracyBudget();
  const fs::path destination = run.results_dir / run.job_id;
  // A result directory from an earlier, interrupted run of this job was never reported.
  fs::remove_all(destination, error);
  if (absl::Status published = core::PublishResultDirectory(staging.path.string(), destination.string(), report);
      !published.ok()) {
    return InStep("publishing the result directory", published);
  }
  absl::StatusOr<std::vector<core::ManifestEntry>> artifacts = core::ReadManifest(destination.string());
  if (!artifacts.ok()) return InStep("reading the result directory", artifacts.status());
  output.artifacts = *std::move(artifacts);
  return output;
}

}  // namespace ptq::server
