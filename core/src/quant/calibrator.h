#ifndef PTQ_CORE_SRC_QUANT_CALIBRATOR_H_
#define PTQ_CORE_SRC_QUANT_CALIBRATOR_H_

#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "quant/accuracy_budget.h"
#include "quant/activation_observer.h"
#include "quant/calibration_state.h"
#include "quant/quant_math.h"
#include "quant/quantized_model.h"
#include "quant/weight_rounding.h"

namespace ptq::core {

struct CalibrationOptions {
  ActivationQuantizerSpec activation;
  WeightGranularity weights = WeightGranularity::kPerChannel;
  bool bias_correction = false;
  // How many of the first calibration batches the layer-by-layer pass (learned rounding, bias
  // correction) uses (PtqConfig's).
  int bias_correction_batches = 2;
  WeightRoundingOptions rounding;  // iterations 0: nearest
  // Cross-layer equalization on the first `bias_correction_batches` batches before any range
  // is observed: of activation ranges with per-channel weights (EqualizeActivationRanges), of
  // weight ranges with per-tensor weights (EqualizeWeightRanges; the activation rule widens a
  // per-tensor weight range, and did not help there).
  bool equalize = false;
  // The last `holdout_batches` batches set no range and no correction; sensitivity and the
  // budget are measured on them and "auto" chooses on them. 0: none held out (then none of
  // those can be asked for: INVALID_ARGUMENT).
  int holdout_batches = 0;
  bool sensitivity = false;
  AccuracyBudget budget;
  PlanOptions plan;  // the plan's options, which the budget's trials add float layers to
};

// done / total calibration steps.
using CalibrationProgress = std::function<void(int64_t done, int64_t total)>;

struct CalibrationBatch {
  at::Tensor images;             // on the model's device
  std::vector<int32_t> labels;   // one per image, kNoLabel where unknown
};

// The calibration data: yields the next batch, or nullopt at the end; `count` is how many
// batches it will yield.
struct BatchStream {
  std::function<absl::StatusOr<std::optional<CalibrationBatch>>()> next;
  int64_t count = 0;
};

// Calibrates `model` (whose fp32 graph and plan are set) on `batches`:
//   0. (equalize) the first `bias_correction_batches` batches read ahead and the fp32 graph
//      equalized on them (activation ranges with per-channel weights, weight ranges with
//      per-tensor ones); the graph as it was is kept for fp32 results
//      (model.before_equalization);
//   1. weights: symmetric int8 scales per channel or per tensor, fake-quantized into
//      model.simulated;
//   2. activations: each observed point sees its fp32 values over every batch, then its
//      observer gives the threshold and the point's scheme gives scale and zero point;
//   3. layer by layer in graph order, each int8 conv/linear with every earlier layer already
//      refined: (optional) its weights' rounding learned (LearnWeightRounding), then
//      (bias_correction, optional) the per-channel mean of (simulated output - fp32 output),
//      measured before its fused activation, subtracted from its bias.
//   4. int8 kernels: weight scales and biases aligned across the int8 runtimes and each int8
//      conv/linear's requantization recorded (PrepareInt8Kernels);
//   5. with held-out batches: the model scored on them; with `sensitivity` or a budget, each
//      int8 layer's sensitivity (MeasureLayerSensitivity); with a budget, layers left in float
//      until it is met (FallBackUntilBudget), each trial redoing steps 1-4 from the same
//      observations (every value is observed then, so any plan's ranges are known).
// Steps 1-2 stream every batch through one fp32 pass. Step 3 (when either part is on) runs node
// by node over the first
// `bias_correction_batches` batches at once (fp32 and simulated side by side), which keeps each
// layer's correction exact at the cost of holding two live activations per kept batch.
// CANCELLED when `cancelled` is set; progress counts batches, then nodes of the second pass,
// then sensitivity layers and budget trials (a budget met early jumps to the end).
// FAILED_PRECONDITION when the held-out batches would leave none to calibrate on.
absl::Status Calibrate(QuantizedModel& model, BatchStream& batches,
                       const CalibrationOptions& options, const CalibrationProgress& progress,
                       const std::atomic<bool>* cancelled);

// Calibrates `model` (fp32 graph and plan set) from what an earlier calibration of the same
// graph measured, without data: its equalized weights, its activation ranges for the points
// this plan quantizes, its bias corrections for the layers still int8 (measured with the
// earlier plan's layers quantized), then steps 1 and 4 as above with nearest rounding, and the
// per-layer SQNR on the state's images. FAILED_PRECONDITION when the state is for another graph
// or lacks a range this plan needs (a layer that was float there is int8 here).
absl::Status RestoreCalibration(QuantizedModel& model, const CalibrationState& state, WeightGranularity weights);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_CALIBRATOR_H_
