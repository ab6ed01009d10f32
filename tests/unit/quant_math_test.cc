#include "quant/quant_math.h"

#include <gtest/gtest.h>

namespace ptq::core {
namespace {

TEST(QuantMathTest, ActivationQParamsPerScheme) {
  const ActivationQParams unsigned_q = ActivationQParamsFor(6.0, ActivationScheme::kUnsigned);
  // Scales are float32 values: ONNX stores them as float and every runtime must see the same one.
  EXPECT_EQ(unsigned_q.scale, static_cast<float>(6.0 / 255));
  EXPECT_EQ(unsigned_q.zero_point, 0);
  const ActivationQParams signed_q = ActivationQParamsFor(1.27, ActivationScheme::kSigned);
  EXPECT_EQ(signed_q.scale, 0.01f);
  EXPECT_EQ(signed_q.zero_point, 128);
  EXPECT_GT(ActivationQParamsFor(0.0, ActivationScheme::kSigned).scale, 0.0);
  // Hardswish outputs cover [-0.375, T]: T = 5.625 gives scale 6 / 255 and zero at code
  // round(0.375 / (6 / 255)) = round(15.94) = 16.
  const ActivationQParams hardswish = ActivationQParamsFor(5.625, ActivationScheme::kHardswishRange);
  EXPECT_EQ(hardswish.scale, static_cast<float>(6.0 / 255));
  EXPECT_EQ(hardswish.zero_point, 16);
}

TEST(QuantMathTest, PerChannelScalesAreAbsmaxOver127) {
  const at::Tensor weight = at::tensor({1.27f, -0.5f, 0.0f, 0.0f, -2.54f, 1.0f}).reshape({3, 2, 1, 1});
  const WeightQParams per_channel = ComputeWeightQParams(weight, WeightGranularity::kPerChannel);
  ASSERT_EQ(per_channel.scales.numel(), 3);
  EXPECT_FLOAT_EQ(per_channel.scales[0].item<float>(), 0.01f);
  EXPECT_GT(per_channel.scales[1].item<float>(), 0.0f);  // an all-zero channel still gets a scale
  EXPECT_FLOAT_EQ(per_channel.scales[2].item<float>(), 0.02f);
  const WeightQParams per_tensor = ComputeWeightQParams(weight, WeightGranularity::kPerTensor);
  ASSERT_EQ(per_tensor.scales.numel(), 1);
  EXPECT_FLOAT_EQ(per_tensor.scales[0].item<float>(), 0.02f);
  // Per tensor, 0.5 / 0.02 = 25 steps exactly; per channel 1.27 -> 127 steps.
  EXPECT_FLOAT_EQ(FakeQuantizeWeight(weight, per_tensor)[0][1][0][0].item<float>(), -0.5f);
}

TEST(QuantMathTest, WeightQuantizerNames) {
  WeightGranularity granularity;
  EXPECT_TRUE(ParseWeightQuantizer("AbsmaxQuantizer", &granularity).ok());
  EXPECT_EQ(granularity, WeightGranularity::kPerTensor);
  EXPECT_TRUE(ParseWeightQuantizer("PerChannelAbsmaxQuantizer", &granularity).ok());
  EXPECT_EQ(granularity, WeightGranularity::kPerChannel);
  const absl::Status bad = ParseWeightQuantizer("ChannelWise", &granularity);
  EXPECT_NE(bad.message().find("ptq.weight_quantizer"), absl::string_view::npos);
}

// A 1x1 conv on a 2x2 input, worked in integers by hand:
//   input threshold 1.27, signed: scale 0.01, zero point 128;
//   x = [0.3, -0.2, 0.9, 1.27] -> q = [158, 108, 218, 255]
//   weights [0.5, -0.25], per channel -> scales 0.5/127, 0.25/127, q_w = [127, -127]
//   y_c = s_x * s_w[c] * q_w[c] * (q - 128) + b_c
//     c=0: 0.01 * 0.5 * (q - 128) + 0.1 = [0.25, -0.0, 0.55, 0.735]
//     c=1: -0.01 * 0.25 * (q - 128)     = [-0.075, 0.05, -0.225, -0.3175]
TEST(QuantMathTest, FakeQuantConvEqualsIntegerArithmeticByHand) {
  const at::Tensor x = at::tensor({0.3f, -0.2f, 0.9f, 1.27f}).reshape({1, 1, 2, 2});
  const at::Tensor weight = at::tensor({0.5f, -0.25f}).reshape({2, 1, 1, 1});
  const at::Tensor bias = at::tensor({0.1f, 0.0f});
  const ActivationQParams input_q = ActivationQParamsFor(1.27, ActivationScheme::kSigned);
  const WeightQParams weight_q = ComputeWeightQParams(weight, WeightGranularity::kPerChannel);
  const at::Tensor y = at::conv2d(FakeQuantizeActivation(x, input_q), FakeQuantizeWeight(weight, weight_q), bias);
  const at::Tensor expected =
      at::tensor({0.25f, 0.0f, 0.55f, 0.735f, -0.075f, 0.05f, -0.225f, -0.3175f}).reshape({1, 2, 2, 2});
  EXPECT_TRUE(at::allclose(y, expected, 0, 1e-6)) << y;
}

// The same identity on random data: float conv of fake-quantized tensors equals the scaled
// integer conv of (q_x - zero point) and q_w (exact in float for these magnitudes).
TEST(QuantMathTest, FakeQuantConvEqualsIntegerConvOnRandomData) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({2, 4, 7, 7});
  const at::Tensor weight = at::randn({6, 4, 3, 3});
  const ActivationQParams input_q =
      ActivationQParamsFor(x.abs().max().item<double>(), ActivationScheme::kSigned);
  const WeightQParams weight_q = ComputeWeightQParams(weight, WeightGranularity::kPerChannel);
  const at::Tensor simulated =
      at::conv2d(FakeQuantizeActivation(x, input_q), FakeQuantizeWeight(weight, weight_q), {}, 1, 1);

  const at::Tensor q_x = at::quantize_per_tensor(x, input_q.scale, input_q.zero_point, at::kQUInt8)
                             .int_repr().to(at::kFloat) - static_cast<double>(input_q.zero_point);
  const at::Tensor q_w = at::clamp(at::round(weight / weight_q.scales.reshape({-1, 1, 1, 1})), -127, 127);
  const at::Tensor integer = at::conv2d(q_x, q_w, {}, 1, 1);
  const at::Tensor rescaled = integer * input_q.scale * weight_q.scales.reshape({1, -1, 1, 1});
  EXPECT_TRUE(at::allclose(simulated, rescaled, 1e-5, 1e-5));
}

}  // namespace
}  // namespace ptq::core
