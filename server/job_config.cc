#include "job_config.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "data_paths.h"
#include "ptq/common/sha256.h"

namespace ptq::server {
namespace {

constexpr int kDefaultBatchNum = 10;   // the seed's quant_batch_num
constexpr int kDefaultBatchSize = 10;  // the seed's quant_batch_size
constexpr int kMaxBatchNum = 100000;
constexpr int kMaxBatchSize = 4096;
constexpr size_t kMaxNameLength = 256;
constexpr size_t kMaxPathLength = 4096;  // PATH_MAX

absl::Status OutOfRange(absl::string_view key, int64_t value, int64_t low, int64_t high) {
  return absl::InvalidArgumentError(absl::StrCat(key, " must be in [", low, ", ", high, "], got ", value));
}

absl::StatusOr<core::PtqConfig> ResolvePtq(v1::PtqSpec* ptq) {
  core::PtqConfig config;
  if (ptq->activation_quantizer().empty()) ptq->set_activation_quantizer(config.activation_quantizer);
  if (ptq->weight_quantizer().empty()) ptq->set_weight_quantizer(config.weight_quantizer);
  if (!ptq->has_bins()) ptq->set_bins(config.bins);
  if (!ptq->has_upsample_bins()) ptq->set_upsample_bins(config.upsample_bins);
  if (!ptq->has_hist_percent()) ptq->set_hist_percent(config.hist_percent);
  if (!ptq->has_percentile()) ptq->set_percentile(config.percentile);
  if (!ptq->has_fuse()) ptq->set_fuse(config.fuse);
  if (!ptq->has_skip_se_quant()) ptq->set_skip_se_quant(config.skip_se_quant);
  if (!ptq->has_bias_correction()) ptq->set_bias_correction(config.bias_correction);
  if (!ptq->has_bias_correction_batches()) ptq->set_bias_correction_batches(config.bias_correction_batches);
  if (ptq->weight_rounding().empty()) ptq->set_weight_rounding(config.weight_rounding);
  if (!ptq->has_adaround_iterations()) ptq->set_adaround_iterations(config.adaround_iterations);
  if (!ptq->has_sensitivity()) ptq->set_sensitivity(config.sensitivity);
  if (!ptq->has_holdout_batches()) ptq->set_holdout_batches(config.holdout_batches);
  if (ptq->backend().empty()) ptq->set_backend(config.backend);
  config.activation_quantizer = ptq->activation_quantizer();
  config.weight_quantizer = ptq->weight_quantizer();
  config.bins = ptq->bins();
  config.upsample_bins = ptq->upsample_bins();
  config.hist_percent = ptq->hist_percent();
  config.percentile = ptq->percentile();
  config.fuse = ptq->fuse();
  for (int i = 0; i < ptq->fuse_list_size(); ++i) {
    const v1::FuseGroup& group = ptq->fuse_list(i);
    if (group.layers_size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("ptq.fuse_list[", i, "] must name at least two layers, got ", group.layers_size()));
    }
    config.fuse_list.emplace_back(group.layers().begin(), group.layers().end());
  }
  config.skip_se_quant = ptq->skip_se_quant();
  config.skip_layers.assign(ptq->skip_layers().begin(), ptq->skip_layers().end());
  config.bias_correction = ptq->bias_correction();
  config.bias_correction_batches = ptq->bias_correction_batches();
  config.weight_rounding = ptq->weight_rounding();
  config.adaround_iterations = ptq->adaround_iterations();
  config.sensitivity = ptq->sensitivity();
  if (ptq->has_equalize()) config.equalize = ptq->equalize();
  if (ptq->has_min_agreement()) config.min_agreement = ptq->min_agreement();
  if (ptq->has_max_top1_drop()) config.max_top1_drop = ptq->max_top1_drop();
  ptq->set_equalize(config.Equalizes());  // what an unset key resolved to, as for the other defaults
  config.holdout_batches = ptq->holdout_batches();
  config.backend = ptq->backend();
  if (absl::Status valid = core::ValidatePtqConfig(config); !valid.ok()) return valid;
  return config;
}

absl::StatusOr<core::DataSpec> ResolveDataset(const std::string& data_root, const std::string& path,
                                              const std::string& format, absl::string_view key,
                                              const core::PreprocessSpec& preprocess) {
  core::DataSpec spec;
  absl::StatusOr<std::filesystem::path> resolved = ResolveDataPath(data_root, path, absl::StrCat(key, ".path"));
  if (!resolved.ok()) return resolved.status();
  absl::StatusOr<core::DatasetFormat> parsed = core::ParseDatasetFormat(format, absl::StrCat(key, ".format"));
  if (!parsed.ok()) return parsed.status();
  spec.path = resolved->string();
  spec.confine_to = data_root;
  spec.format = *parsed;
  spec.preprocess = preprocess;
  return spec;
}

}  // namespace

absl::StatusOr<core::PreprocessSpec> ResolveInput(v1::InputSpec* input) {
  core::PreprocessSpec spec;
  if (!input->has_size()) input->set_size(spec.size);
  if (!input->has_resize_short()) input->set_resize_short(spec.resize_short);
  if (input->mean().empty()) *input->mutable_mean() = {spec.mean.begin(), spec.mean.end()};
  if (input->std().empty()) *input->mutable_std() = {spec.std.begin(), spec.std.end()};
  if (input->color_order().empty()) input->set_color_order("RGB");
  spec.size = input->size();
  spec.resize_short = input->resize_short();
  spec.mean.assign(input->mean().begin(), input->mean().end());
  spec.std.assign(input->std().begin(), input->std().end());
  absl::StatusOr<core::ColorOrder> order = core::ParseColorOrder(input->color_order());
  if (!order.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.color_order must be \"RGB\" or \"BGR\", got \"", input->color_order(), "\""));
  }
  spec.color_order = *order;
  if (absl::Status valid = core::ValidatePreprocessSpec(spec); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("input.", valid.message()));
  }
  return spec;
}

absl::StatusOr<core::DataSpec> ResolveEvaluationData(const std::string& data_root, const std::string& path,
                                                    const std::string& format, int64_t limit,
                                                    const core::PreprocessSpec& preprocess) {
  if (limit < 0) return absl::InvalidArgumentError(absl::StrCat("evaluate.limit must be >= 0, got ", limit));
  absl::StatusOr<core::DataSpec> data = ResolveDataset(data_root, path, format, "evaluate", preprocess);
  if (!data.ok()) return data.status();
  data->limit = limit;
  data->batch_size = 32;
  data->require_labels = true;  // accuracy needs them; a folder of images without its list has none
  return data;
}

absl::StatusOr<ResolvedJob> ResolveJobConfig(v1::JobConfig* config, const std::string& data_root) {
  ResolvedJob job;
  if (config->ByteSizeLong() > kMaxJobConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the job config is ", config->ByteSizeLong(),
                                                   " bytes encoded; at most ", kMaxJobConfigBytes, " are accepted"));
  }
  const std::tuple<absl::string_view, const std::string*, size_t> strings[] = {
      {"name", &config->name(), kMaxNameLength},
      {"model.path", &config->model().path(), kMaxPathLength},
      {"output_dir", &config->output_dir(), kMaxPathLength},
      {"input.color_order", &config->input().color_order(), kMaxPathLength},
      {"calibration.source", &config->calibration().source(), kMaxPathLength},
      {"calibration.path", &config->calibration().path(), kMaxPathLength},
      {"calibration.format", &config->calibration().format(), kMaxPathLength},
      {"calibration.from_job", &config->calibration().from_job(), kMaxNameLength},
      {"evaluate.path", &config->evaluate().path(), kMaxPathLength},
      {"evaluate.format", &config->evaluate().format(), kMaxPathLength},
      {"ptq.activation_quantizer", &config->ptq().activation_quantizer(), kMaxPathLength},
      {"ptq.weight_quantizer", &config->ptq().weight_quantizer(), kMaxPathLength},
      {"ptq.backend", &config->ptq().backend(), kMaxPathLength},
  };
  for (const auto& [key, value, most] : strings) {
    if (value->size() > most) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, " is ", value->size(), " characters long; at most ", most, " are accepted"));
    }
  }
  const std::string& model_id = config->model().model_id();
  if (model_id.empty()) {
    return absl::InvalidArgumentError(
        "model.model_id is required: upload the model first (ptq-client does it for model.path)");
  }
  if (!IsSha256Hex(model_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.model_id must be 64 lowercase hex digits (the sha256 UploadModel returned), got '",
                     model_id, "'"));
  }
  absl::StatusOr<core::PreprocessSpec> preprocess = ResolveInput(config->mutable_input());
  if (!preprocess.ok()) return preprocess.status();
  job.preprocess = *preprocess;
  absl::StatusOr<core::PtqConfig> ptq = ResolvePtq(config->mutable_ptq());
  if (!ptq.ok()) return ptq.status();
  job.ptq = *std::move(ptq);

  v1::CalibrationSpec* calibration = config->mutable_calibration();
  if (!calibration->has_quant_batch_num()) calibration->set_quant_batch_num(kDefaultBatchNum);
  if (!calibration->has_quant_batch_size()) calibration->set_quant_batch_size(kDefaultBatchSize);
  if (calibration->quant_batch_num() < 1 || calibration->quant_batch_num() > kMaxBatchNum) {
    return OutOfRange("calibration.quant_batch_num", calibration->quant_batch_num(), 1, kMaxBatchNum);
  }
  if (calibration->quant_batch_size() < 1 || calibration->quant_batch_size() > kMaxBatchSize) {
    return OutOfRange("calibration.quant_batch_size", calibration->quant_batch_size(), 1, kMaxBatchSize);
  }
  if (job.ptq.HoldsImagesOut() && job.ptq.holdout_batches >= calibration->quant_batch_num()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ptq.holdout_batches (", job.ptq.holdout_batches, ") must leave calibration batches to calibrate on: "
        "calibration.quant_batch_num is ", calibration->quant_batch_num()));
  }
  job.quant_batch_num = calibration->quant_batch_num();
  job.quant_batch_size = calibration->quant_batch_size();
  const std::string& source = calibration->source();
  if (!calibration->from_job().empty()) {
    if (!source.empty() || !calibration->path().empty()) {
      return absl::InvalidArgumentError(
          "calibration.from_job reuses another job's calibration: calibration.source and calibration.path go with "
          "calibrating on data; give one or the other");
    }
    // A job id ("job-" and 16 hex digits), which also names that job's result directory.
    const std::string& from_job = calibration->from_job();
    if (from_job.size() != 20 || !absl::StartsWith(from_job, "job-") ||
        !std::all_of(from_job.begin() + 4, from_job.end(),
                     [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("calibration.from_job must be a job id such as job-0123456789abcdef, got '", from_job, "'"));
    }
    if (job.ptq.sensitivity || job.ptq.AsksForBudget()) {
      return absl::InvalidArgumentError(
          "ptq.sensitivity, ptq.min_agreement and ptq.max_top1_drop measure on held-out calibration images, which "
          "calibration.from_job does not read; calibrate again to use them");
    }
    job.calibration_from_job = from_job;
  } else if (source == "stream" || source == "client") {
    job.streamed = true;
  } else if (source == "server") {
    absl::StatusOr<core::DataSpec> data = ResolveDataset(data_root, calibration->path(), calibration->format(),
                                                         "calibration", job.preprocess);
    if (!data.ok()) return data.status();
    job.calibration = *std::move(data);
    job.calibration.batch_size = job.quant_batch_size;
    job.calibration.limit = int64_t{job.quant_batch_num} * job.quant_batch_size;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "calibration.source must be \"server\", \"stream\" or \"client\", got \"", source, "\""));
  }

  const v1::EvaluateSpec& evaluate = config->evaluate();
  if (!evaluate.path().empty()) {
    absl::StatusOr<core::DataSpec> data =
        ResolveEvaluationData(data_root, evaluate.path(), evaluate.format(), evaluate.limit(), job.preprocess);
    if (!data.ok()) return data.status();
    job.evaluation = *std::move(data);
  }
  return job;
}

}  // namespace ptq::server
