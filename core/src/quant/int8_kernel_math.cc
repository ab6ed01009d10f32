#include "quant/int8_kernel_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace ptq::core {
namespace {

// The accumulator plus bias is summed in float32 by onednn: integers stay exact below 2^24,
// so the bias is kept within 2^22 and leaves room for the accumulator.
constexpr double kMaxBiasInAcc = 4194304.0;  // 2^22
// How far (in ulps) a weight scale may move to align the multipliers and biases: a relative
// change under 1.3e-4, far below the weight grid's own rounding (1/127 at the largest weight).
// (64 ulps left some layers with no scale at which both hold.)
constexpr int kMaxScaleUlps = 1024;
constexpr int kMaxBiasUlps = 16;
constexpr int kMaxBiasSteps = 64;

float Reciprocal(double value) { return static_cast<float>(1.0 / value); }

// onednn's scale in accumulator units, f32(1/s_in) * f32(1/s_w).
float OnednnBiasScale(double input_scale, float weight_scale) {
  return Reciprocal(input_scale) * Reciprocal(weight_scale);
}

float OnednnMultiplier(double input_scale, float weight_scale, double output_scale) {
  return Reciprocal(output_scale) / OnednnBiasScale(input_scale, weight_scale);
}

// qnnpack's and ONNX Runtime's multiplier, (s_w * s_in) / s_out in float32.
float IntegerBiasMultiplier(double input_scale, float weight_scale, double output_scale) {
  return (weight_scale * static_cast<float>(input_scale)) / static_cast<float>(output_scale);
}

// The int32 bias qnnpack and ONNX Runtime derive from a float bias.
double IntegerBias(float bias, double input_scale, float weight_scale) {
  return std::nearbyint(static_cast<double>(bias) / (input_scale * static_cast<double>(weight_scale)));
}

std::vector<float> ToFloats(const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
}

at::Tensor FromFloats(const std::vector<float>& values, const at::Device& device) {
  return at::tensor(values, at::TensorOptions().dtype(at::kFloat)).to(device);
}

// The float nearest `target` / bias_scale that onednn scales to exactly `target` and that the
// integer-bias runtimes round to `target` too; nullopt if none is within a few ulps.
std::optional<float> BiasOnTheAccumulatorGrid(double target, double input_scale, float weight_scale) {
  const float bias_scale = OnednnBiasScale(input_scale, weight_scale);
  const float start = static_cast<float>(target / static_cast<double>(bias_scale));
  float up = start, down = start;
  for (int step = 0; step <= kMaxBiasUlps; ++step) {
    for (float candidate : {up, down}) {
      if (static_cast<double>(candidate * bias_scale) == target &&
          IntegerBias(candidate, input_scale, weight_scale) == target) {
        return candidate;
      }
    }
    up = std::nextafter(up, std::numeric_limits<float>::infinity());
    down = std::nextafter(down, -std::numeric_limits<float>::infinity());
  }
  return std::nullopt;
}

// The bias moved to the nearest integer in accumulator units that onednn's float product can
// hit exactly (a step of one unit is s_in * s_w, far below the output's resolution).
std::optional<float> NearestAlignedBias(float bias, double input_scale, float weight_scale) {
  const double nearest = IntegerBias(bias, input_scale, weight_scale);
  for (int distance = 0; distance <= kMaxBiasSteps; ++distance) {
    for (double target : {nearest + distance, nearest - distance}) {
      if (std::optional<float> snapped = BiasOnTheAccumulatorGrid(target, input_scale, weight_scale)) return snapped;
    }
  }
  return std::nullopt;
}

}  // namespace

Int8KernelParams OnednnKernelParams(const at::Tensor& weight, const WeightQParams& weight_qparams,
                                    double input_scale, const at::Tensor& bias, double output_scale) {
  const std::vector<float> scales = ToFloats(weight_qparams.scales);
  const int64_t channels = bias.defined() ? bias.numel() : static_cast<int64_t>(scales.size());
  const std::vector<float> biases = bias.defined() ? ToFloats(bias) : std::vector<float>(channels, 0.0f);
  std::vector<float> bias_in_acc(static_cast<size_t>(channels)), multiplier(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = scales.size() == 1 ? scales[0] : scales[static_cast<size_t>(c)];
    bias_in_acc[static_cast<size_t>(c)] = biases[static_cast<size_t>(c)] * OnednnBiasScale(input_scale, scale);
    multiplier[static_cast<size_t>(c)] = OnednnMultiplier(input_scale, scale, output_scale);
  }
  const at::Device device = weight.device();
  return {at::round(weight / BroadcastScales(weight_qparams, weight)), FromFloats(bias_in_acc, device),
          FromFloats(multiplier, device)};
}

AlignedLayer AlignRequantization(double input_scale, const at::Tensor& weight_scales, const at::Tensor& bias,
                                 double output_scale) {
  std::vector<float> scales = ToFloats(weight_scales);
  std::vector<float> biases = bias.defined() ? ToFloats(bias) : std::vector<float>();
  const bool per_tensor = scales.size() == 1;
  AlignedLayer aligned;
  for (size_t s = 0; s < scales.size(); ++s) {
    // The channels this scale serves: one, or all of them for per-tensor weights; none when
    // the layer has no bias (a conv whose BatchNorm was not folded).
    const size_t last = per_tensor ? biases.size() : std::min(s + 1, biases.size());
    const size_t first = per_tensor ? 0 : std::min(s, last);
    double largest_bias = 0;
    for (size_t c = first; c < last; ++c) largest_bias = std::max(largest_bias, std::fabs(double{biases[c]}));
    // A channel with (almost) no weights would need a huge integer bias: give it a scale at
    // which the bias fits (its weights round to the same few codes, or stay zero).
    const float lowest = std::max(scales[s], static_cast<float>(largest_bias / (input_scale * kMaxBiasInAcc)));
    // The first scale at which the multipliers agree and every bias it serves can be snapped;
    // failing that, the first at which the multipliers agree, with what could be snapped.
    const auto group_begin = biases.begin() + static_cast<std::ptrdiff_t>(first);
    const auto group_end = biases.begin() + static_cast<std::ptrdiff_t>(last);
    std::optional<std::pair<float, std::vector<float>>> chosen, fallback;
    float scale = lowest;
    for (int step = 0; step <= kMaxScaleUlps && !chosen;
         ++step, scale = std::nextafter(scale, std::numeric_limits<float>::infinity())) {
      if (OnednnMultiplier(input_scale, scale, output_scale) != IntegerBiasMultiplier(input_scale, scale, output_scale)) {
        continue;
      }
      std::vector<float> snapped(group_begin, group_end);
      bool all_snapped = true;
      for (float& value : snapped) {
        const std::optional<float> aligned_bias = NearestAlignedBias(value, input_scale, scale);
        if (aligned_bias) value = *aligned_bias;
        all_snapped = all_snapped && aligned_bias.has_value();
      }
      if (all_snapped) {
        chosen = {scale, std::move(snapped)};
      } else if (!fallback) {
        fallback = {scale, std::move(snapped)};
      }
    }
    if (!chosen) {
      aligned.unaligned_channels += static_cast<int64_t>(per_tensor ? last - first : 1);
      if (fallback) {
        chosen = std::move(fallback);
      } else {
        chosen = {lowest, std::vector<float>(group_begin, group_end)};
      }
    }
    scales[s] = chosen->first;
    std::copy(chosen->second.begin(), chosen->second.end(), group_begin);
  }
  const at::Device device = weight_scales.device();
  aligned.weight_scales = FromFloats(scales, device);
  if (bias.defined()) aligned.bias = FromFloats(biases, device).to(bias.scalar_type());
  return aligned;
}

at::Tensor RunInt8WeightedLayer(const Node& node, const at::Tensor& input, const ActivationQParams& input_qparams,
                                const Int8KernelParams& kernel, const ActivationQParams& output_qparams) {
  // Integer codes as floats: products and partial sums are integers, exact in float while
  // below 2^24 (always for fewer than 518 inputs per output, otherwise unless activations
  // and weights are extreme together); rounding the sum also repairs convolution algorithms
  // that are not exact (Winograd/FFT on GPUs).
  const at::Tensor input_codes = at::round(input / input_qparams.scale);
  at::Tensor accumulator =
      node.kind == OpKind::kConv2d
          ? at::conv2d(input_codes, kernel.weight_codes, {}, node.stride, node.padding, node.dilation, node.groups)
          : at::linear(input_codes, kernel.weight_codes);
  accumulator = at::round(accumulator);
  std::vector<int64_t> channel_axis(static_cast<size_t>(accumulator.dim()), 1);
  channel_axis[1] = -1;
  at::Tensor output =
      (accumulator + kernel.bias_in_acc.reshape(channel_axis)) * kernel.multiplier.reshape(channel_axis);
  if (node.activation != FusedActivation::kNone) output = at::relu(output);
  const double zero_point = static_cast<double>(output_qparams.zero_point);
  const at::Tensor codes = at::clamp(at::round(output) + zero_point, 0, 255);
  return (codes - zero_point) * output_qparams.scale;
}

}  // namespace ptq::core
