#include "calibration_reuse.h"

#include <google/protobuf/util/message_differencer.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "job_config.h"

namespace ptq::server {
namespace {

using google::protobuf::util::MessageDifferencer;

// One key that must match: `given` says whether `config` set it.
struct Inherited {
  const char* key;
  bool given;
  bool same;
};

absl::Status Differs(const v1::Job& earlier, const std::string& key) {
  return absl::InvalidArgumentError(absl::StrCat(
      key, " differs from job ", earlier.job_id(), "'s, whose calibration calibration.from_job reuses; leave it out "
      "to take that job's, or calibrate again"));
}

bool InputGiven(const v1::InputSpec& input) {
  return input.has_size() || input.has_resize_short() || input.mean_size() > 0 || input.std_size() > 0 ||
         !input.color_order().empty();
}

}  // namespace

absl::Status InheritCalibration(const v1::Job& earlier, v1::JobConfig* config) {
  const v1::JobConfig& before = earlier.config();
  if (before.ptq().weight_rounding() == "adaround") {
    return absl::FailedPreconditionError(absl::StrCat("calibration.from_job: job ", earlier.job_id(),
                                                      " learned its weight rounding (adaround), which is not kept for "
                                                      "reuse; calibrate again"));
  }
  if (config->model().model_id().empty()) {
    config->mutable_model()->set_model_id(before.model().model_id());
  } else if (config->model().model_id() != before.model().model_id()) {
    return Differs(earlier, "model.model_id");
  }
  if (InputGiven(config->input())) {
    v1::InputSpec given = config->input();
    if (absl::StatusOr<core::PreprocessSpec> resolved = ResolveInput(&given); !resolved.ok()) return resolved.status();
    if (!MessageDifferencer::Equals(given, before.input())) return Differs(earlier, "input");
  }
  *config->mutable_input() = before.input();

  v1::PtqSpec* ptq = config->mutable_ptq();
  const v1::PtqSpec& old = before.ptq();
  const Inherited keys[] = {
      {"ptq.activation_quantizer", !ptq->activation_quantizer().empty(),
       ptq->activation_quantizer() == old.activation_quantizer()},
      {"ptq.weight_quantizer", !ptq->weight_quantizer().empty(), ptq->weight_quantizer() == old.weight_quantizer()},
      {"ptq.bins", ptq->has_bins(), ptq->bins() == old.bins()},
      {"ptq.upsample_bins", ptq->has_upsample_bins(), ptq->upsample_bins() == old.upsample_bins()},
      {"ptq.hist_percent", ptq->has_hist_percent(), ptq->hist_percent() == old.hist_percent()},
      {"ptq.percentile", ptq->has_percentile(), ptq->percentile() == old.percentile()},
      {"ptq.fuse", ptq->has_fuse(), ptq->fuse() == old.fuse()},
      {"ptq.fuse_list", ptq->fuse_list_size() > 0,
       ptq->fuse_list_size() == old.fuse_list_size() &&
           std::equal(ptq->fuse_list().begin(), ptq->fuse_list().end(), old.fuse_list().begin(),
                      [](const v1::FuseGroup& a, const v1::FuseGroup& b) { return MessageDifferencer::Equals(a, b); })},
      {"ptq.bias_correction", ptq->has_bias_correction(), ptq->bias_correction() == old.bias_correction()},
      {"ptq.bias_correction_batches", ptq->has_bias_correction_batches(),
       ptq->bias_correction_batches() == old.bias_correction_batches()},
      {"ptq.weight_rounding", !ptq->weight_rounding().empty(), ptq->weight_rounding() == old.weight_rounding()},
      {"ptq.equalize", ptq->has_equalize(), ptq->equalize() == old.equalize()},
  };
  for (const Inherited& key : keys) {
    if (key.given && !key.same) return Differs(earlier, key.key);
  }
  // What the plan may change, taken from the earlier job where not given.
  v1::PtqSpec merged = old;
  merged.clear_sensitivity();
  merged.clear_min_agreement();
  merged.clear_max_top1_drop();
  merged.clear_holdout_batches();
  if (ptq->skip_layers_size() > 0) *merged.mutable_skip_layers() = ptq->skip_layers();
  if (ptq->has_skip_se_quant()) merged.set_skip_se_quant(ptq->skip_se_quant());
  if (!ptq->backend().empty()) merged.set_backend(ptq->backend());
  if (ptq->has_sensitivity()) merged.set_sensitivity(ptq->sensitivity());
  if (ptq->has_min_agreement()) merged.set_min_agreement(ptq->min_agreement());
  if (ptq->has_max_top1_drop()) merged.set_max_top1_drop(ptq->max_top1_drop());
  if (ptq->has_holdout_batches()) merged.set_holdout_batches(ptq->holdout_batches());
  *ptq = std::move(merged);
  v1::CalibrationSpec* calibration = config->mutable_calibration();
  calibration->set_quant_batch_num(before.calibration().quant_batch_num());
  calibration->set_quant_batch_size(before.calibration().quant_batch_size());
  return absl::OkStatus();
}

}  // namespace ptq::server
