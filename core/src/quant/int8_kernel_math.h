#ifndef PTQ_CORE_SRC_QUANT_INT8_KERNEL_MATH_H_
#define PTQ_CORE_SRC_QUANT_INT8_KERNEL_MATH_H_

#include <ATen/ATen.h>

#include "graph/graph_ir.h"
#include "quant/quant_math.h"

namespace ptq::core {

// How an int8 conv/linear kernel turns its int32 accumulator into a uint8 output, per output
// channel c, in float32 arithmetic:
//   q = clamp(round_half_even((acc + bias_in_acc[c]) * multiplier[c]) + zero_point, 0, 255)
// The runtimes we ship for form the two per-channel numbers differently (measured bit-exact on
// LibTorch 1.13 and onnxruntime 1.30, x86):
//   onednn:  bias_in_acc = f32(b) * (f32(1/s_in) * f32(1/s_w)), multiplier = f32(1/s_out) / that product;
//   qnnpack and ONNX Runtime's QLinearConv: bias_in_acc = round(b / (s_in * s_w)) (int32),
//            multiplier = (s_w * s_in) / s_out.
// A one-ulp difference is enough to matter: on a small MobileNet one flipped rounding in 10^5
// outputs grows layer by layer into different top-1 answers on 1-2% of the images.
struct Int8KernelParams {
  at::Tensor weight_codes;  // the int8 weight codes as floats, the weight's shape
  at::Tensor bias_in_acc;   // float [C]
  at::Tensor multiplier;    // float [C]
};

// onednn's numbers for a layer with these weights (on their int8 grid) and scales; `bias`
// may be undefined.
Int8KernelParams OnednnKernelParams(const at::Tensor& weight, const WeightQParams& weight_qparams,
                                    double input_scale, const at::Tensor& bias, double output_scale);

// Raises each weight scale where a bias would not fit the accumulator's exact range, then
// moves it up float ulp by ulp (at most 1024) to the first value at which onednn's multiplier
// equals the one qnnpack and ONNX Runtime form and every bias it serves can be replaced by a
// nearby value (within 64 accumulator units) that every runtime turns into the same integer.
// Weights are not re-rounded here: the caller requantizes them with the returned scales.
// Counts the channels that could not be aligned (their results may differ by one step
// between runtimes in rare ties).
struct AlignedLayer {
  at::Tensor weight_scales;  // float [C] (or [1] for per-tensor weights)
  at::Tensor bias;           // float [C], undefined if the layer has none
  int64_t unaligned_channels = 0;
};
AlignedLayer AlignRequantization(double input_scale, const at::Tensor& weight_scales, const at::Tensor& bias,
                                 double output_scale);

// The int8 conv/linear `node` (weights on their int8 grid) as the onednn kernel computes it,
// on `input` already on its uint8 grid: integer accumulation, then the kernel's
// requantization, the fused ReLU(6) applied as the kernel does (a ReLU; the output grid ends
// at 6 for ReLU6), and the result read back as float on the output's grid.
at::Tensor RunInt8WeightedLayer(const Node& node, const at::Tensor& input, const ActivationQParams& input_qparams,
                                const Int8KernelParams& kernel, const ActivationQParams& output_qparams);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_INT8_KERNEL_MATH_H_
