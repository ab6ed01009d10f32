#ifndef PTQ_CORE_SRC_QUANT_QUANTIZER_SPECS_H_
#define PTQ_CORE_SRC_QUANT_QUANTIZER_SPECS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ptq::core {

// The seed's activation quantizers and ours, by the names configs use.
struct ActivationQuantizerSpec {
  // AbsmaxQuantizer, HistQuantizer, KLQuantizer, MSEQuantizer, PercentileQuantizer, or "auto"
  // (each of them tried on held-out calibration images, the best kept).
  std::string name = "PercentileQuantizer";
  int bins = 1024;
  int upsample_bins = 64;
  double hist_percent = 0.99999;     // HistQuantizer
  double percentile = 99.99;         // PercentileQuantizer
};

inline constexpr char kAutoActivationQuantizer[] = "auto";

// What "auto" tries, in the order it tries them (the first wins ties).
const std::vector<std::string>& AutoActivationQuantizers();

// INVALID_ARGUMENT naming the key (ptq.activation_quantizer, ptq.bins, ptq.upsample_bins,
// ptq.hist_percent, ptq.percentile) for unknown names or out-of-range parameters.
absl::Status ValidateActivationQuantizer(const ActivationQuantizerSpec& spec);

struct PtqConfig;
// The activation quantizer part of a job's ptq config.
ActivationQuantizerSpec ActivationSpecOf(const PtqConfig& config);

// Symmetric int8 weights in [-127, 127]: scale = max |w| / 127 per output channel
// (PerChannelAbsmaxQuantizer) or for the whole tensor (AbsmaxQuantizer).
enum class WeightGranularity { kPerChannel, kPerTensor };

// "PerChannelAbsmaxQuantizer" or "AbsmaxQuantizer"; INVALID_ARGUMENT naming ptq.weight_quantizer.
absl::Status ParseWeightQuantizer(const std::string& name, WeightGranularity* granularity);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_QUANTIZER_SPECS_H_
