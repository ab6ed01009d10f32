#include "quant/layer_sensitivity.h"

#include <gtest/gtest.h>

#include "graph/executor.h"

namespace ptq::core {
namespace {

ActivationQParams UnsignedGrid(double scale) {
  ActivationQParams qparams;
  qparams.scheme = ActivationScheme::kUnsigned;
  qparams.scale = scale;
  qparams.threshold = 255 * scale;
  return qparams;
}

// One 1x1 conv, fp32 weight 0.3 and bias 0.05; its int8 form: weight 0.25 and corrected bias
// 0.1; input on a grid of step 0.1, output on one of step 0.05.
QuantizedModel OneConv() {
  Node conv;
  conv.kind = OpKind::kConv2d;
  conv.inputs = {0};
  conv.output = 1;
  conv.weight = at::full({1, 1, 1, 1}, 0.3);
  conv.bias = at::full({1}, 0.05);
  conv.stride = {1, 1};
  conv.padding = {0, 0};
  conv.dilation = {1, 1};
  conv.groups = 1;
  QuantizedModel model;
  model.fp32.nodes = {conv};
  model.fp32.input = 0;
  model.fp32.output = 1;
  model.fp32.num_values = 2;
  model.simulated = model.fp32;
  model.simulated.nodes[0].weight = at::full({1, 1, 1, 1}, 0.25);
  model.simulated.nodes[0].bias = at::full({1}, 0.1);
  model.plan.node_is_int8 = {true};
  model.activations = {UnsignedGrid(0.1), UnsignedGrid(0.05)};
  model.int8_kernels = {std::nullopt};
  return model;
}

// Input 0.33 and 0.74 (on the input grid 0.3 and 0.7):
//   only weights:     0.25 x + 0.1       = 0.1825, 0.285 (nothing rounded);
//   only activations: 0.3 q(x) + 0.05    = 0.14, 0.26 -> on the 0.05 grid 0.15, 0.25.
TEST(ErrorSourcesTest, EachVariantQuantizesOnlyItsHalf) {
  const QuantizedModel model = OneConv();
  const at::Tensor input = at::tensor({0.33f, 0.74f}).reshape({1, 1, 1, 2});
  const at::Tensor weights_only = RunSimulated(OnlyWeightsInt8(model), input).flatten();
  EXPECT_NEAR(weights_only[0].item<float>(), 0.1825, 1e-6);
  EXPECT_NEAR(weights_only[1].item<float>(), 0.285, 1e-6);
  const at::Tensor activations_only = RunSimulated(OnlyActivationsInt8(model), input).flatten();
  EXPECT_NEAR(activations_only[0].item<float>(), 0.15, 1e-6);
  EXPECT_NEAR(activations_only[1].item<float>(), 0.25, 1e-6);
  // The model itself is left as it was.
  EXPECT_TRUE(model.activations[0].has_value());
  EXPECT_FLOAT_EQ(model.simulated.nodes[0].weight.item<float>(), 0.25f);
}

}  // namespace
}  // namespace ptq::core
