#ifndef PTQ_CORE_SRC_QUANT_LAYER_SENSITIVITY_H_
#define PTQ_CORE_SRC_QUANT_LAYER_SENSITIVITY_H_

#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "ptq/core/report.h"
#include "quant/quantized_model.h"

namespace ptq::core {

// Calibration batches that set no range and no correction: choices made from calibration are
// judged on these, never on the images that made them.
struct HeldOutImages {
  std::vector<at::Tensor> batches;      // on the model's device
  std::vector<int32_t> labels;          // every batch's labels in order; kNoLabel where unknown
  std::vector<at::Tensor> fp32_logits;  // per batch, host float (ComputeFp32Logits)

  int64_t images() const { return static_cast<int64_t>(labels.size()); }
  int64_t labelled() const;
};

// Runs the fp32 graph on each held-out batch once and keeps its logits.
void ComputeFp32Logits(const QuantizedModel& model, HeldOutImages& held_out);

// Scores candidate logits against reference logits, both {N, classes} host float:
//   agreement = 100 * #(argmax candidate == argmax reference) / N,
//   top1_drop = 100 * (#reference correct - #candidate correct) / #labelled  (0 without labels),
//   logit_sqnr_db = 10 log10(sum reference^2 / sum (candidate - reference)^2).
HeldOutScore CompareLogits(const at::Tensor& reference, const at::Tensor& candidate,
                           const std::vector<int32_t>& labels);

// The simulated int8 model against the stored fp32 logits, over every held-out batch.
HeldOutScore ScoreOnHeldOut(const QuantizedModel& model, const HeldOutImages& held_out);

// `model` with only node `index` (an int8 conv/linear) quantized: its weights, kernel and
// input and output activations; every other layer and activation in float.
QuantizedModel OnlyThisLayerInt8(const QuantizedModel& model, size_t index);

// `model` with node `index`'s weights and kernel back in float; activations as they were.
QuantizedModel OnlyThisLayerFloat(const QuantizedModel& model, size_t index);

// `model` with its int8 weights and biases (kernels run in float on them) and every activation
// in float.
QuantizedModel OnlyWeightsInt8(const QuantizedModel& model);

// `model` with every quantized activation on its grid and every layer in float with the fp32
// graph's weights and biases (the equalized graph's, when equalization ran).
QuantizedModel OnlyActivationsInt8(const QuantizedModel& model);

// Both of the above scored on the held-out images.
ErrorSources MeasureErrorSources(const QuantizedModel& model, const HeldOutImages& held_out);

// Each int8 conv/linear of `model`'s plan, in graph order, scored both ways on the held-out
// images, with its SQNR (from model.layer_sqnr) and its share of the conv/linear MACs.
// `progress` is called once per layer. CANCELLED once `cancelled` is set.
absl::StatusOr<std::vector<LayerSensitivity>> MeasureLayerSensitivity(
    const QuantizedModel& model, const HeldOutImages& held_out, const std::function<void()>& progress,
    const std::atomic<bool>* cancelled);

// Each conv/linear's share of the model's conv/linear multiply-accumulates, in percent, by
// module path: output elements per image times weights per output channel, on `input`.
std::vector<std::pair<std::string, double>> MacPercentByLayer(const Graph& graph, const at::Tensor& input);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_LAYER_SENSITIVITY_H_
