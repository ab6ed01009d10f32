#include "ptq/core/ptq_config.h"

#include "activation_observer.h"
#include "quant_math.h"

namespace ptq::core {

ActivationQuantizerSpec ActivationSpecOf(const PtqConfig& config) {
  ActivationQuantizerSpec spec;
  spec.name = config.activation_quantizer;
  spec.bins = config.bins;
  spec.upsample_bins = config.upsample_bins;
  spec.hist_percent = config.hist_percent;
  spec.percentile = config.percentile;
  return spec;
}

absl::Status ValidatePtqConfig(const PtqConfig& config) {
  if (absl::Status status = ValidateActivationQuantizer(ActivationSpecOf(config)); !status.ok()) {
    return status;
  }
  WeightGranularity granularity;
  if (absl::Status status = ParseWeightQuantizer(config.weight_quantizer, &granularity); !status.ok()) {
    return status;
  }
  if (!config.fuse_list.empty() && !config.fuse) {
    return absl::InvalidArgumentError("ptq.fuse_list only applies with ptq.fuse = true");
  }
  return absl::OkStatus();
}

}  // namespace ptq::core
