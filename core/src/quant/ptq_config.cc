#include "ptq/core/ptq_config.h"

#include "absl/strings/str_cat.h"
#include "quant/quantizer_specs.h"

namespace ptq::core {
namespace {

absl::Status CheckLayerName(const std::string& name, const std::string& key) {
  if (name.size() > kMaxLayerNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(key, " is ", name.size(), " characters long; layer names may have at most ",
                                                   kMaxLayerNameLength));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePtqConfig(const PtqConfig& config) {
  if (absl::Status status = ValidateActivationQuantizer(ActivationSpecOf(config)); !status.ok()) {
    return status;
  }
  WeightGranularity granularity;
  if (absl::Status status = ParseWeightQuantizer(config.weight_quantizer, &granularity); !status.ok()) {
    return status;
  }
  if (config.bias_correction_batches < 1 || config.bias_correction_batches > kMaxBiasCorrectionBatches) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.bias_correction_batches must be in [1, ", kMaxBiasCorrectionBatches,
                                                   "], got ", config.bias_correction_batches));
  }
  if (config.weight_rounding != "nearest" && config.weight_rounding != "adaround") {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.weight_rounding must be \"nearest\" or \"adaround\", got \"", config.weight_rounding, "\""));
  }
  if (config.backend != "onednn" && config.backend != "qnnpack") {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.backend must be \"onednn\" or \"qnnpack\", got \"", config.backend, "\""));
  }
  if (config.adaround_iterations < 1 || config.adaround_iterations > kMaxAdaRoundIterations) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.adaround_iterations must be in [1, ", kMaxAdaRoundIterations,
                                                   "], got ", config.adaround_iterations));
  }
  if (config.min_agreement != -1 && !(config.min_agreement > 0 && config.min_agreement <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.min_agreement must be a percentage in (0, 100], got ", config.min_agreement));
  }
  if (config.max_top1_drop != -1 && !(config.max_top1_drop >= 0 && config.max_top1_drop <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ptq.max_top1_drop must be in [0, 100] top-1 points, got ", config.max_top1_drop));
  }
  if (config.holdout_batches < 1 || config.holdout_batches > kMaxHoldoutBatches) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.holdout_batches must be in [1, ", kMaxHoldoutBatches,
                                                   "], got ", config.holdout_batches));
  }
  if (config.skip_layers.size() > kMaxLayerNames) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.skip_layers may name at most ", kMaxLayerNames,
                                                   " layers, got ", config.skip_layers.size()));
  }
  if (config.fuse_list.size() > kMaxLayerNames) {
    return absl::InvalidArgumentError(absl::StrCat("ptq.fuse_list may hold at most ", kMaxLayerNames,
                                                   " groups, got ", config.fuse_list.size()));
  }
  for (size_t i = 0; i < config.skip_layers.size(); ++i) {
    if (absl::Status status = CheckLayerName(config.skip_layers[i], absl::StrCat("ptq.skip_layers[", i, "]"));
        !status.ok()) {
      return status;
    }
  }
  for (size_t i = 0; i < config.fuse_list.size(); ++i) {
    if (config.fuse_list[i].size() > kMaxFuseGroupLayers) {
      return absl::InvalidArgumentError(absl::StrCat("ptq.fuse_list[", i, "] may name at most ", kMaxFuseGroupLayers,
                                                     " layers, got ", config.fuse_list[i].size()));
    }
    for (size_t j = 0; j < config.fuse_list[i].size(); ++j) {
      if (absl::Status status =
              CheckLayerName(config.fuse_list[i][j], absl::StrCat("ptq.fuse_list[", i, "][", j, "]"));
          !status.ok()) {
        return status;
      }
    }
  }
  if (!config.fuse_list.empty() && !config.fuse) {
    return absl::InvalidArgumentError("ptq.fuse_list only applies with ptq.fuse = true");
  }
  return absl::OkStatus();
}

}  // namespace ptq::core
