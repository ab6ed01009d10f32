#include "quant/quant_math.h"

#include <algorithm>
#include <cmath>


namespace ptq::core {
namespace {

// Below this a scale would make every value saturate; also keeps division safe.
constexpr double kMinScale = 1e-8;
constexpr int64_t kWeightLevels = 127;
constexpr double kHardswishMinimum = 0.375;  // -min over x of x * relu6(x + 3) / 6

}  // namespace

const char* ActivationSchemeName(ActivationScheme scheme) {
  switch (scheme) {
    case ActivationScheme::kUnsigned: return "uint8_zero_point_0";
    case ActivationScheme::kSigned: return "uint8_symmetric_zero_point_128";
    case ActivationScheme::kHardswishRange: return "uint8_hardswish_range";
  }
  return "";
}

int LevelsOf(ActivationScheme scheme) { return scheme == ActivationScheme::kSigned ? 127 : 255; }

ActivationQParams ActivationQParamsFor(double threshold, ActivationScheme scheme) {
  ActivationQParams qparams;
  qparams.scheme = scheme;
  qparams.threshold = threshold;
  // Scales are float32 values: ONNX stores them as float, and every runtime must see the same one.
  switch (scheme) {
    case ActivationScheme::kUnsigned:
    case ActivationScheme::kSigned:
      qparams.scale = static_cast<float>(std::max(threshold / LevelsOf(scheme), kMinScale));
      qparams.zero_point = scheme == ActivationScheme::kUnsigned ? 0 : 128;
      break;
    case ActivationScheme::kHardswishRange:
      qparams.scale = static_cast<float>(std::max((threshold + kHardswishMinimum) / 255, kMinScale));
      qparams.zero_point = std::clamp<int64_t>(std::llround(kHardswishMinimum / qparams.scale), 0, 255);
      break;
  }
  return qparams;
}

at::Tensor FakeQuantizeActivation(const at::Tensor& values, const ActivationQParams& qparams) {
  return at::fake_quantize_per_tensor_affine(values, qparams.scale, qparams.zero_point, 0, 255);
}

WeightQParams ComputeWeightQParams(const at::Tensor& weight, WeightGranularity granularity) {
  WeightQParams qparams;
  qparams.granularity = granularity;
  const at::Tensor absmax = granularity == WeightGranularity::kPerChannel
                                ? weight.abs().reshape({weight.size(0), -1}).amax(1)
                                : weight.abs().max().reshape({1});
  qparams.scales = (absmax / kWeightLevels).clamp_min(kMinScale).to(at::kFloat).contiguous();
  return qparams;
}

at::Tensor FakeQuantizeWeight(const at::Tensor& weight, const WeightQParams& qparams) {
  if (qparams.granularity == WeightGranularity::kPerTensor) {
    return at::fake_quantize_per_tensor_affine(weight, qparams.scales.item<double>(), 0,
                                               -kWeightLevels, kWeightLevels);
  }
  const at::Tensor zero_points =
      at::zeros({qparams.scales.size(0)}, qparams.scales.options().dtype(at::kInt));
  return at::fake_quantize_per_channel_affine(weight, qparams.scales, zero_points, 0,
                                              -kWeightLevels, kWeightLevels);
}

at::Tensor BroadcastScales(const WeightQParams& qparams, const at::Tensor& weight) {
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = -1;
  return qparams.scales.to(weight.device(), weight.scalar_type()).reshape(shape);
}

at::Tensor QuantizeWeight(const at::Tensor& weight, const WeightQParams& qparams) {
  const at::Tensor cpu_weight = weight.to(at::kCPU, at::kFloat);
  if (qparams.granularity == WeightGranularity::kPerTensor) {
    return at::quantize_per_tensor(cpu_weight, qparams.scales.item<double>(), 0, at::kQInt8);
  }
  return at::quantize_per_channel(cpu_weight, qparams.scales.to(at::kCPU, at::kDouble),
                                  at::zeros({cpu_weight.size(0)}, at::kLong), 0, at::kQInt8);
}

int64_t CodesOffNearest(const at::Tensor& fp32, const at::Tensor& quantized, const WeightQParams& qparams) {
  return QuantizeWeight(fp32, qparams).int_repr().ne(QuantizeWeight(quantized, qparams).int_repr()).sum().item<int64_t>();
}

}  // namespace ptq::core
