#include "quant/quantizer_specs.h"

#include "absl/strings/str_cat.h"
#include "ptq/core/ptq_config.h"

namespace ptq::core {
namespace {

constexpr int kMinBins = 128;
// KL's threshold search is quadratic in bins and a widening resample is linear in
// bins x upsample_bins: these caps keep one observer to seconds and megabytes.
constexpr int kMaxBins = 8192;
constexpr int kMaxUpsampleBins = 1024;

}  // namespace

const std::vector<std::string>& AutoActivationQuantizers() {
  static const std::vector<std::string> quantizers = {"PercentileQuantizer", "MSEQuantizer", "HistQuantizer",
                                                      "AbsmaxQuantizer", "KLQuantizer"};
  return quantizers;
}

absl::Status ValidateActivationQuantizer(const ActivationQuantizerSpec& spec) {
  const std::string& name = spec.name;
  if (name != "AbsmaxQuantizer" && name != "HistQuantizer" && name != "KLQuantizer" &&
      name != "MSEQuantizer" && name != "PercentileQuantizer" && name != kAutoActivationQuantizer) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ptq.activation_quantizer: unknown quantizer '", name,
        "', expected AbsmaxQuantizer, HistQuantizer, KLQuantizer, MSEQuantizer, PercentileQuantizer or auto"));
  }
  if (spec.bins < kMinBins || spec.bins > kMaxBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.bins must be in [", kMinBins, ", ", kMaxBins, "], got ", spec.bins));
  }
  if (spec.upsample_bins < 1 || spec.upsample_bins > kMaxUpsampleBins) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.upsample_bins must be in [1, ", kMaxUpsampleBins,
                                                   "], got ", spec.upsample_bins));
  }
  if (!(spec.hist_percent > 0 && spec.hist_percent <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.hist_percent must be in (0, 1], got ", spec.hist_percent));
  }
  if (!(spec.percentile > 0 && spec.percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.percentile must be in (0, 100], got ", spec.percentile));
  }
  return absl::OkStatus();
}

ActivationQuantizerSpec ActivationSpecOf(const PtqConfig& config) {
  ActivationQuantizerSpec spec;
  spec.name = config.activation_quantizer;
  spec.bins = config.bins;
  spec.upsample_bins = config.upsample_bins;
  spec.hist_percent = config.hist_percent;
  spec.percentile = config.percentile;
  return spec;
}

absl::Status ParseWeightQuantizer(const std::string& name, WeightGranularity* granularity) {
  if (name == "PerChannelAbsmaxQuantizer" || name.empty()) {
    *granularity = WeightGranularity::kPerChannel;
  } else if (name == "AbsmaxQuantizer") {
    *granularity = WeightGranularity::kPerTensor;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "ptq.weight_quantizer: unknown quantizer '", name,
        "', expected PerChannelAbsmaxQuantizer or AbsmaxQuantizer"));
  }
  return absl::OkStatus();
}

}  // namespace ptq::core
