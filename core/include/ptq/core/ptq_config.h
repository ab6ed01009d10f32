#ifndef PTQ_CORE_PTQ_CONFIG_H_
#define PTQ_CORE_PTQ_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ptq::core {

// The `ptq` section of a job config: the PaddleSlim seed's knobs under their names, plus ours.
struct PtqConfig {
  // AbsmaxQuantizer, HistQuantizer, KLQuantizer (the seed's default), MSEQuantizer,
  // PercentileQuantizer.
  std::string activation_quantizer = "KLQuantizer";
  // PerChannelAbsmaxQuantizer (default) or AbsmaxQuantizer (per tensor); symmetric int8.
  std::string weight_quantizer = "PerChannelAbsmaxQuantizer";
  int bins = 1024;              // histogram bins (Hist, KL, MSE, Percentile)
  int upsample_bins = 64;       // resampling factor when a histogram's range grows
  double hist_percent = 0.99999;  // HistQuantizer
  double percentile = 99.99;      // PercentileQuantizer
  bool fuse = false;            // fold BatchNorm into conv/linear
  std::vector<std::vector<std::string>> fuse_list;  // only these [layer, batch_norm] pairs
  bool skip_se_quant = false;   // keep squeeze-excitation layers in float
  std::vector<std::string> skip_layers;  // keep these conv/linear layers in float
  // Empirical bias correction from the calibration batches. On by default: it won for every
  // activation quantizer on the real MobileNetV1-0.25 (see bench_ptq_accuracy).
  bool bias_correction = true;
};

// INVALID_ARGUMENT naming the key ("ptq.hist_percent must be in (0, 1], got 2").
absl::Status ValidatePtqConfig(const PtqConfig& config);

}  // namespace ptq::core

#endif  // PTQ_CORE_PTQ_CONFIG_H_
