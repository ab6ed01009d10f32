#include "quant/int8_kernel_math.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>

#include <cmath>

namespace ptq::core {
namespace {

ActivationQParams QParams(double scale, int64_t zero_point) {
  ActivationQParams qparams;
  qparams.scale = scale;
  qparams.zero_point = zero_point;
  return qparams;
}

WeightQParams PerChannel(const at::Tensor& scales) {
  WeightQParams qparams;
  qparams.granularity = WeightGranularity::kPerChannel;
  qparams.scales = scales.to(at::kFloat).contiguous();
  return qparams;
}

Node OneByOneConv(const at::Tensor& weight, const at::Tensor& bias, FusedActivation activation) {
  Node node;
  node.kind = OpKind::kConv2d;
  node.weight = weight;
  node.bias = bias;
  node.stride = {1, 1};
  node.padding = {0, 0};
  node.dilation = {1, 1};
  node.activation = activation;
  return node;
}

// s_in 0.5, s_w 0.25, s_out 2, bias 1: onednn's bias scale is (1/0.5) * (1/0.25) = 8, so the
// bias is 8 accumulator units and the multiplier 0.5 / 8 = 0.0625. With weight code 1 the
// accumulator is the input code k, and the output code is round((k + 8) / 16).
TEST(Int8KernelMathTest, HandComputedRequantizationRoundsHalfToEven) {
  const WeightQParams weights = PerChannel(at::tensor({0.25f}));
  const at::Tensor weight = at::full({1, 1, 1, 1}, 0.25f);
  const at::Tensor bias = at::tensor({1.0f});
  const Int8KernelParams kernel = OnednnKernelParams(weight, weights, 0.5, bias, 2.0);
  EXPECT_EQ(kernel.weight_codes.item<float>(), 1.0f);
  EXPECT_EQ(kernel.bias_in_acc.item<float>(), 8.0f);
  EXPECT_EQ(kernel.multiplier.item<float>(), 0.0625f);

  // Input codes (zero point 128) 32, 40, 48, -12: (k + 8) / 16 = 2.5, 3, 3.5, -0.25.
  const at::Tensor input = at::tensor({32.0f, 40.0f, 48.0f, -12.0f}).reshape({4, 1, 1, 1}) * 0.5f;
  const at::Tensor output = RunInt8WeightedLayer(OneByOneConv(weight, bias, FusedActivation::kNone), input,
                                                 QParams(0.5, 128), kernel, QParams(2.0, 128));
  // 2.5 -> 2 and 3.5 -> 4 (half to even), -0.25 -> 0; read back at scale 2.
  EXPECT_TRUE(at::equal(output.flatten(), at::tensor({4.0f, 6.0f, 8.0f, 0.0f})));

  // A fused ReLU clamps below zero: (-40 + 8) / 16 = -2 -> 0, (120 + 8) / 16 = 8.
  const at::Tensor relu_input = at::tensor({-40.0f, 120.0f}).reshape({2, 1, 1, 1}) * 0.5f;
  const at::Tensor relu_output = RunInt8WeightedLayer(OneByOneConv(weight, bias, FusedActivation::kRelu), relu_input,
                                                      QParams(0.5, 128), kernel, QParams(2.0, 0));
  EXPECT_TRUE(at::equal(relu_output.flatten(), at::tensor({0.0f, 16.0f})));
}

float IntegerBiasMultiplier(double input_scale, float weight_scale, double output_scale) {
  return (weight_scale * static_cast<float>(input_scale)) / static_cast<float>(output_scale);
}

// After alignment onednn's multiplier is the one qnnpack and ONNX Runtime compute, and its
// float bias scales to exactly the integer they round it to.
TEST(Int8KernelMathTest, AlignmentMakesTheRuntimesFormulasAgree) {
  at::manual_seed(7);
  constexpr int64_t kChannels = 8192;
  at::Tensor scales = at::rand({kChannels}) * 0.02 + 1e-4;
  scales[3] = 1e-8;  // an all-zero channel's scale: its bias would not fit an int32
  const at::Tensor bias = at::randn({kChannels}) * 2;
  const double input_scale = static_cast<float>(0.0173), output_scale = static_cast<float>(0.0419);
  const AlignedLayer aligned = AlignRequantization(input_scale, scales, bias, output_scale);
  EXPECT_EQ(aligned.unaligned_channels, 0);
  const at::Tensor weight = at::zeros({kChannels, 1, 1, 1});
  const Int8KernelParams kernel = OnednnKernelParams(weight, PerChannel(aligned.weight_scales), input_scale,
                                                     aligned.bias, output_scale);
  for (int64_t c = 0; c < kChannels; ++c) {
    const float scale = aligned.weight_scales[c].item<float>();
    const float moved_ulps = (scale - scales[c].item<float>()) / (std::nextafter(scale, 1.0f) - scale);
    if (c != 3) {
      EXPECT_LE(moved_ulps, 1024.0f) << "channel " << c;
    }
    EXPECT_EQ(kernel.multiplier[c].item<float>(), IntegerBiasMultiplier(input_scale, scale, output_scale));
    const double integer_bias =
        std::nearbyint(double{aligned.bias[c].item<float>()} / (input_scale * double{scale}));
    EXPECT_EQ(double{kernel.bias_in_acc[c].item<float>()}, integer_bias) << "channel " << c;
    EXPECT_LE(std::fabs(integer_bias), 4194304.0);
    // The bias moved by at most 64 accumulator units.
    EXPECT_LE(std::fabs(aligned.bias[c].item<float>() - bias[c].item<float>()), 65 * input_scale * scale);
  }
}

// Regression: a conv without a bias (BatchNorm not folded, `fuse` false) and per-channel
// weights made the alignment build a vector of negative length (std::length_error), which
// failed every such calibration.
TEST(Int8KernelMathTest, AlignmentOfALayerWithoutABias) {
  const double input_scale = static_cast<float>(0.0231), output_scale = static_cast<float>(0.0577);
  const AlignedLayer aligned =
      AlignRequantization(input_scale, at::tensor({0.0042f, 0.0051f, 0.0037f}), at::Tensor(), output_scale);
  EXPECT_FALSE(aligned.bias.defined());
  EXPECT_EQ(aligned.unaligned_channels, 0);
  ASSERT_EQ(aligned.weight_scales.numel(), 3);
  const std::vector<float> requested = {0.0042f, 0.0051f, 0.0037f};
  for (int64_t c = 0; c < 3; ++c) {
    // Moved up by at most a few float steps, to where the two multipliers agree.
    const float scale = aligned.weight_scales[c].item<float>();
    EXPECT_GE(scale, requested[c]);
    EXPECT_LE(scale, requested[c] * (1 + 1e-5f));
  }
}

// Per-tensor weights: one scale must suit every channel's bias at once.
TEST(Int8KernelMathTest, AlignmentFindsOneScaleForPerTensorWeights) {
  at::manual_seed(3);
  constexpr int64_t kChannels = 2048;
  const at::Tensor bias = at::randn({kChannels});
  const double input_scale = static_cast<float>(0.0231), output_scale = static_cast<float>(0.0577);
  const AlignedLayer aligned = AlignRequantization(input_scale, at::tensor({0.0042f}), bias, output_scale);
  EXPECT_EQ(aligned.unaligned_channels, 0);
  ASSERT_EQ(aligned.weight_scales.numel(), 1);
  WeightQParams per_tensor;
  per_tensor.granularity = WeightGranularity::kPerTensor;
  per_tensor.scales = aligned.weight_scales;
  const Int8KernelParams kernel =
      OnednnKernelParams(at::zeros({kChannels, 1, 1, 1}), per_tensor, input_scale, aligned.bias, output_scale);
  const float scale = aligned.weight_scales.item<float>();
  for (int64_t c = 0; c < kChannels; ++c) {
    EXPECT_EQ(kernel.multiplier[c].item<float>(), IntegerBiasMultiplier(input_scale, scale, output_scale));
    EXPECT_EQ(double{kernel.bias_in_acc[c].item<float>()},
              std::nearbyint(double{aligned.bias[c].item<float>()} / (input_scale * double{scale})))
        << "channel " << c;
  }
}

// `quantized.*` for TorchScript source, as the exporter resolves it.
struct QuantizedOpsResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
};

// LibTorch's own int8 conv on the same codes, read back as float.
at::Tensor RealQuantizedConv(const Node& node, const at::Tensor& input, const ActivationQParams& in,
                             const WeightQParams& weights, const ActivationQParams& out) {
  torch::jit::Module module("RealConv");
  module.define(R"(
def run(self, x: Tensor, w: Tensor, b: Optional[Tensor], groups: int, relu: bool, scale: float, zero_point: int):
    packed = quantized.conv2d_prepack(w, b, [1, 1], [1, 1], [1, 1], groups)
    if relu:
        return quantized.conv2d_relu(x, packed, scale, zero_point)
    return quantized.conv2d(x, packed, scale, zero_point)
)",
                std::make_shared<QuantizedOpsResolver>());
  const at::Tensor quantized_input = at::quantize_per_tensor(input, in.scale, in.zero_point, at::kQUInt8);
  return module
      .run_method("run", quantized_input, QuantizeWeight(node.weight, weights), node.bias, node.groups,
                  node.activation != FusedActivation::kNone, out.scale, out.zero_point)
      .toTensor()
      .dequantize();
}

// The simulation is bit-exact with onednn's int8 conv for random scales, zero points, fused
// ReLU, dense and depthwise convs, aligned or not; and once aligned, qnnpack computes the same.
TEST(Int8KernelMathTest, MatchesLibTorchInt8ConvolutionBitForBit) {
  at::manual_seed(11);
  for (int trial = 0; trial < 12; ++trial) {
    const bool depthwise = trial % 2 == 1;
    const bool aligned = trial % 3 != 0;
    const int64_t channels = 24, in_channels = depthwise ? 1 : 16;
    const ActivationQParams in = QParams(static_cast<float>(0.005 + 0.05 * at::rand({1}).item<double>()),
                                         trial % 4 < 2 ? 128 : 0);
    const ActivationQParams out = QParams(static_cast<float>(0.01 + 0.1 * at::rand({1}).item<double>()),
                                          trial % 4 == 0 ? 128 : 0);
    Node node = OneByOneConv(at::Tensor(), at::randn({channels}), trial % 4 == 0 ? FusedActivation::kNone
                                                                                  : FusedActivation::kRelu);
    node.padding = {1, 1};
    node.groups = depthwise ? channels : 1;
    const at::Tensor raw_weight = at::randn({channels, in_channels, 3, 3}) * at::rand({channels, 1, 1, 1});
    WeightQParams weights = ComputeWeightQParams(raw_weight, WeightGranularity::kPerChannel);
    if (aligned) {
      const AlignedLayer layer = AlignRequantization(in.scale, weights.scales, node.bias, out.scale);
      weights.scales = layer.weight_scales;
      node.bias = layer.bias;
    }
    node.weight = FakeQuantizeWeight(raw_weight, weights);
    const Int8KernelParams kernel = OnednnKernelParams(node.weight, weights, in.scale, node.bias, out.scale);
    const at::Tensor input = FakeQuantizeActivation(
        at::randn({2, depthwise ? channels : in_channels, 9, 9}) * (in.zero_point == 0 ? 1.0 : 0.5) *
                (in.scale * 100) +
            (in.zero_point == 0 ? in.scale * 100 : 0.0),
        in);
    const at::Tensor simulated = RunInt8WeightedLayer(node, input, in, kernel, out);

    at::globalContext().setQEngine(at::QEngine::ONEDNN);
    EXPECT_TRUE(at::equal(simulated, RealQuantizedConv(node, input, in, weights, out))) << "onednn, trial " << trial;
    if (aligned) {
      at::globalContext().setQEngine(at::QEngine::QNNPACK);
      EXPECT_TRUE(at::equal(simulated, RealQuantizedConv(node, input, in, weights, out)))
          << "qnnpack, trial " << trial;
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
    }
  }
}

}  // namespace
}  // namespace ptq::core
