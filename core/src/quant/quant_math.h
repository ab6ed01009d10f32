#ifndef PTQ_CORE_SRC_QUANT_QUANT_MATH_H_
#define PTQ_CORE_SRC_QUANT_QUANT_MATH_H_

#include <ATen/ATen.h>

#include <string>

#include "absl/status/status.h"
#include "quant/quantizer_specs.h"

namespace ptq::core {

// How an activation is stored as uint8 (quint8, what onednn's int8 kernels take):
//   kUnsigned: values known to be >= 0 (after ReLU/ReLU6, sigmoid gates): zero point 0,
//              scale T / 255, covering [0, T];
//   kSigned:   symmetric around zero: zero point 128, scale T / 127, covering [-1.008 T, T];
//   kHardswishRange: hardswish outputs, known >= -0.375 (its minimum, at x = -1.5): scale
//              (T + 0.375) / 255 and the zero point where 0 lands, covering [-0.375, T] with
//              nearly twice the resolution the symmetric grid gives (MobileNetV3 is mostly
//              hardswish outputs).
enum class ActivationScheme { kUnsigned, kSigned, kHardswishRange };
const char* ActivationSchemeName(ActivationScheme scheme);
// Quantized steps the observers place on [0, T]: 255 (unsigned, and hardswish's grid, most of
// which lies above zero) or 127.
int LevelsOf(ActivationScheme scheme);

struct ActivationQParams {
  ActivationScheme scheme = ActivationScheme::kSigned;
  double threshold = 0;  // T, the largest magnitude represented
  double scale = 1;
  int64_t zero_point = 0;
};

// Scale and zero point for a threshold; a zero threshold gets a tiny positive scale.
ActivationQParams ActivationQParamsFor(double threshold, ActivationScheme scheme);

// Round to the uint8 grid of `qparams` and back (round half to even, as real quantization).
at::Tensor FakeQuantizeActivation(const at::Tensor& values, const ActivationQParams& qparams);

struct WeightQParams {
  WeightGranularity granularity = WeightGranularity::kPerChannel;
  at::Tensor scales;  // float, one per output channel (or one element)
};

WeightQParams ComputeWeightQParams(const at::Tensor& weight, WeightGranularity granularity);
at::Tensor FakeQuantizeWeight(const at::Tensor& weight, const WeightQParams& qparams);

// The scales on the weight's device and dtype, shaped to broadcast over it: [C, 1, ...] per
// channel, [1, 1, ...] per tensor.
at::Tensor BroadcastScales(const WeightQParams& qparams, const at::Tensor& weight);

// The weight as a qint8 tensor (per channel along axis 0, or per tensor) on the CPU, for the
// exporters: int8 codes in [-127, 127] with zero points 0.
at::Tensor QuantizeWeight(const at::Tensor& weight, const WeightQParams& qparams);

// How many of a layer's weights `quantized` (on its int8 grid) puts on another code than
// rounding `fp32` to nearest does: the codes learned rounding changed.
int64_t CodesOffNearest(const at::Tensor& fp32, const at::Tensor& quantized, const WeightQParams& qparams);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_QUANT_MATH_H_
