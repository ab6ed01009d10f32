#include "job_runner.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <utility>

#include "job_protos.h"
#include "ptq/core/pipeline.h"

namespace ptq::server {
namespace {

v1::JobState StateOf(core::PipelineStage stage) {
  switch (stage) {
    case core::PipelineStage::kCalibrating: return v1::JOB_STATE_CALIBRATING;
    case core::PipelineStage::kExporting: return v1::JOB_STATE_EXPORTING;
    case core::PipelineStage::kEvaluating: return v1::JOB_STATE_EVALUATING;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

v1::Timings ToProto(const core::PipelineTimings& timings) {
  v1::Timings proto;
  proto.set_calibration_seconds(timings.calibration_seconds);
  proto.set_model_load_seconds(timings.model_load_seconds);
  proto.set_export_seconds(timings.export_seconds);
  proto.set_evaluation_seconds(timings.evaluation_seconds);
  proto.set_total_seconds(timings.total_seconds);
  return proto;
}

}  // namespace

absl::StatusOr<JobOutput> RunQuantJob(const JobRun& run) {
  core::PipelineJob job;
  job.model_path = run.model_path;
  job.model_sha256 = run.config.model().model_id();  // the store names each model by its sha256
  job.ptq = run.resolved.ptq;
  job.device = run.device;
  job.open_calibration = [&run]() -> absl::StatusOr<std::unique_ptr<core::BatchSource>> {
    if (run.streamed != nullptr) return run.streamed->Source(0, run.cancelled);
    core::DataSpec spec = run.resolved.calibration;
    spec.cancelled = run.cancelled;
    return core::OpenDataset(spec);
  };
  job.calibration_batches = run.resolved.quant_batch_num;
  if (!run.resolved.calibration_from_job.empty()) {
    job.calibration_from_job = run.resolved.calibration_from_job;
    job.calibration_state_path = (run.results_dir / job.calibration_from_job / core::kCalibrationStateFile).string();
  }
  job.evaluation = run.resolved.evaluation;
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(run.config, &job.config_json, json_options);
  core::PipelineCallbacks callbacks;
  callbacks.enter_stage = [&run](core::PipelineStage stage, int64_t total, const std::string& unit) {
    run.enter_state(StateOf(stage), total, unit);
  };
  callbacks.progress = run.progress;
  callbacks.cancelled = run.cancelled;
  const std::string output_name = run.output_name.empty() ? run.job_id : run.output_name;
  absl::StatusOr<core::PipelineResult> result =
      core::RunPipeline(job, (run.results_dir / (kStagingPrefix + output_name)).string(),
                        (run.results_dir / output_name).string(), callbacks);
  if (!result.ok()) return result.status();
  JobOutput output;
  output.metrics = std::move(result->metrics);
  output.timings = ToProto(result->timings);
  output.calibration_images = result->provenance.calibration_images;
  output.artifacts = std::move(result->artifacts);
  output.session = std::move(result->session);
  return output;
}

void RecordSuccess(const JobOutput& output, v1::Job& job) {
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.mutable_progress()->set_done(job.progress().total());
  v1::Metrics* metrics = job.mutable_metrics();
  metrics->Clear();
  for (const core::VariantAccuracy& accuracy : output.metrics) *metrics->add_variants() = ToProto(accuracy);
  *metrics->mutable_timings() = output.timings;
  metrics->set_dataset(job.config().evaluate().path());
  SetArtifacts(output.artifacts, job);
  *job.mutable_finished_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
}

}  // namespace ptq::server
