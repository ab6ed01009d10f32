#ifndef PTQ_CORE_SRC_CALIBRATOR_H_
#define PTQ_CORE_SRC_CALIBRATOR_H_

#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "activation_observer.h"
#include "quant_math.h"
#include "quantized_model.h"
#include "weight_rounding.h"

namespace ptq::core {

struct CalibrationOptions {
  ActivationQuantizerSpec activation;
  WeightGranularity weights = WeightGranularity::kPerChannel;
  bool bias_correction = false;
  // How many of the first calibration batches the layer-by-layer pass (learned rounding, bias
  // correction) uses (PtqConfig's).
  int bias_correction_batches = 2;
  WeightRoundingOptions rounding;  // iterations 0: nearest
};

// done / total calibration steps.
using CalibrationProgress = std::function<void(int64_t done, int64_t total)>;

// The calibration data: yields the next input batch (on the model's device), or nullopt at
// the end; `count` is how many batches it will yield.
struct BatchStream {
  std::function<absl::StatusOr<std::optional<at::Tensor>>()> next;
  int64_t count = 0;
};

// Calibrates `model` (whose fp32 graph and plan are set) on `batches`:
//   1. weights: symmetric int8 scales per channel or per tensor, fake-quantized into
//      model.simulated;
//   2. activations: each observed point sees its fp32 values over every batch, then its
//      observer gives the threshold and the point's scheme gives scale and zero point;
//   3. layer by layer in graph order, each int8 conv/linear with every earlier layer already
//      refined: (optional) its weights' rounding learned (LearnWeightRounding), then
//      (bias_correction, optional) the per-channel mean of (simulated output - fp32 output),
//      measured before its fused activation, subtracted from its bias.
//   4. int8 kernels: weight scales and biases aligned across the int8 runtimes and each int8
//      conv/linear's requantization recorded (PrepareInt8Kernels).
// Steps 1-2 stream every batch through one fp32 pass. Step 3 (when either part is on) runs node
// by node over the first
// `bias_correction_batches` batches at once (fp32 and simulated side by side), which keeps each
// layer's correction exact at the cost of holding two live activations per kept batch.
// CANCELLED when `cancelled` is set; progress counts batches, then nodes of the second pass.
absl::Status Calibrate(QuantizedModel& model, BatchStream& batches,
                       const CalibrationOptions& options, const CalibrationProgress& progress,
                       const std::atomic<bool>* cancelled);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_CALIBRATOR_H_
