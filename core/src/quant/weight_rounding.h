#ifndef PTQ_CORE_SRC_QUANT_WEIGHT_ROUNDING_H_
#define PTQ_CORE_SRC_QUANT_WEIGHT_ROUNDING_H_

#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>

#include "graph/graph_ir.h"
#include "quant/quant_math.h"

namespace ptq::core {

struct WeightRoundingOptions {
  int iterations = 0;       // 0: round to nearest; otherwise AdaRound steps per layer
  int batch_images = 16;    // images drawn from the kept calibration images per step
  double learning_rate = 0.01;
  double regularization = 0.01;  // lambda
};

// AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training
// Quantization"): per weight, whether it rounds down or up is learned so that the layer's
// output matches fp32, instead of each weight rounding to its nearest step alone.
//   W~ = s * clamp(floor(W / s) + h(V), -127, 127),
//   h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma, 0, 1),  zeta = 1.1, gamma = -0.1,
// with V first set so that h(V) = W / s - floor(W / s) (W~ starts equal to W), then Adam on
//   loss = mean over images and positions of sum over channels (f(W~ x) - y)^2
//          + lambda * sum over weights (1 - |2 h(V) - 1|^beta),
// the rounding term off for the first 20% of steps and beta falling linearly from 20 to 2
// after that (BRECQ's schedule), so that h ends at 0 or 1. `x` is the layer's input in the
// simulated model (earlier layers already quantized), `y` the fp32 model's output of the layer
// after its fused activation f. Each weight then rounds up where h(V) >= 0.5.
// `layer` is the fp32 conv/linear (its weight, bias, activation); returns the weight on its
// int8 grid, the steps drawing images with a generator seeded by `seed`. Stops early, rounding
// what it has learned so far, once `cancelled` (may be null) is set.
at::Tensor LearnWeightRounding(const Node& layer, const WeightQParams& qparams, const at::Tensor& input,
                               const at::Tensor& target, const WeightRoundingOptions& options, uint64_t seed,
                               const std::atomic<bool>* cancelled);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_WEIGHT_ROUNDING_H_
