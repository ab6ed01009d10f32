#include "quant/weight_rounding.h"

#include <gtest/gtest.h>

namespace ptq::core {
namespace {

// One output, four inputs near 1 (1 + 0.1 noise), weights 0.45, 1.40, 2.10, 3.05 steps of 1.
// Rounding each to nearest gives 0, 1, 2, 3: about 6 against fp32's 7, an error near 1 that
// the four roundings add up to. Rounding one up cancels it (the fractions sum to 1); which one
// the noise decides: moving w by d adds about d^2 * 0.01 to the error, so the least move up,
// 0.55 for the first weight, wins. AdaRound sees the errors add up and rounds exactly that one.
TEST(WeightRoundingTest, LearnsToRoundUpWhereNearestLosesTogether) {
  Node layer;
  layer.kind = OpKind::kLinear;
  layer.weight = at::tensor({0.45f, 1.40f, 2.10f, 3.05f}).reshape({1, 4});
  WeightQParams qparams;
  qparams.scales = at::tensor({1.0f});
  at::manual_seed(0);
  const at::Tensor input = 1 + 0.1 * at::randn({64, 4});
  const at::Tensor target = at::linear(input, layer.weight);
  WeightRoundingOptions options;
  options.iterations = 1000;
  const at::Tensor learned = LearnWeightRounding(layer, qparams, input, target, options, 1, nullptr);

  const at::Tensor floors = at::floor(layer.weight);
  const at::Tensor up = learned - floors;
  EXPECT_TRUE(at::logical_or(up.eq(0), up.eq(1)).all().item<bool>()) << learned;  // on the grid, floor or ceil
  EXPECT_TRUE(at::equal(up, at::tensor({1.0f, 0.0f, 0.0f, 0.0f}).reshape({1, 4}))) << learned;
  EXPECT_EQ(CodesOffNearest(layer.weight, learned, qparams), 1);
}

// Weights exactly on the grid with an exact target: nothing to learn, nothing moves.
TEST(WeightRoundingTest, WeightsOnTheGridStay) {
  Node layer;
  layer.kind = OpKind::kLinear;
  layer.weight = at::tensor({-3.0f, 0.0f, 5.0f, 127.0f, -127.0f, 1.0f}).reshape({2, 3}) * 0.5;
  WeightQParams qparams;
  qparams.scales = at::tensor({0.5f, 0.5f});
  at::manual_seed(0);
  const at::Tensor input = at::randn({16, 3});
  WeightRoundingOptions options;
  options.iterations = 200;
  const at::Tensor learned =
      LearnWeightRounding(layer, qparams, input, at::linear(input, layer.weight), options, 3, nullptr);
  EXPECT_TRUE(at::equal(learned, layer.weight)) << learned;
  EXPECT_EQ(CodesOffNearest(layer.weight, learned, qparams), 0);
}

}  // namespace
}  // namespace ptq::core
