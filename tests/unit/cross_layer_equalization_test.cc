#include "quant/cross_layer_equalization.h"

#include <gtest/gtest.h>

#include <cmath>

#include "graph/executor.h"
#include "graph/graph_passes.h"
#include "graph/torchscript_import.h"
#include "test_env.h"

namespace ptq::core {
namespace {

// Ranges 6, 1.5, 0 and 0.001 against the largest, 6: a depthwise reader takes M / a (1, 4),
// any other reader sqrt(M / a) (1, 2); a silent channel stays; 6 / 0.001 = 6000 is capped at
// 256 (sqrt(6000) = 77.46 is not).
TEST(EqualizationScalesTest, HandComputedScales) {
  const std::vector<double> ranges = {6, 1.5, 0, 0.001};
  const std::vector<double> depthwise = EqualizationScales(ranges, true);
  ASSERT_EQ(depthwise.size(), 4u);
  EXPECT_DOUBLE_EQ(depthwise[0], 1);
  EXPECT_DOUBLE_EQ(depthwise[1], 4);
  EXPECT_DOUBLE_EQ(depthwise[2], 1);
  EXPECT_DOUBLE_EQ(depthwise[3], kMaxEqualizationScale);
  const std::vector<double> plain = EqualizationScales(ranges, false);
  EXPECT_DOUBLE_EQ(plain[0], 1);
  EXPECT_DOUBLE_EQ(plain[1], 2);
  EXPECT_DOUBLE_EQ(plain[2], 1);
  EXPECT_NEAR(plain[3], std::sqrt(6000.0), 1e-9);
}

Node Conv(int input, int output, at::Tensor weight, int64_t groups, FusedActivation activation) {
  Node node;
  node.kind = OpKind::kConv2d;
  node.inputs = {input};
  node.output = output;
  node.weight = std::move(weight);
  node.bias = at::zeros({node.weight.size(0)});
  node.stride = {1, 1};
  node.padding = {0, 0};
  node.dilation = {1, 1};
  node.groups = groups;
  node.activation = activation;
  return node;
}

// conv (3 -> 4, ReLU6) -> zero pad -> depthwise 3x3 -> conv 1x1 (4 -> 2): the first pair is
// found through the pad, the second is a plain reader.
Graph ConvPadDepthwisePointwise() {
  at::manual_seed(0);
  Graph graph;
  graph.input = 0;
  graph.nodes.push_back(Conv(0, 1, at::randn({4, 3, 1, 1}), 1, FusedActivation::kRelu6));
  Node pad;
  pad.kind = OpKind::kPad;
  pad.inputs = {1};
  pad.output = 2;
  pad.dims = {0, 1, 0, 1};
  graph.nodes.push_back(pad);
  graph.nodes.push_back(Conv(2, 3, at::randn({4, 1, 3, 3}), 4, FusedActivation::kRelu));
  graph.nodes.push_back(Conv(3, 4, at::randn({2, 4, 1, 1}), 1, FusedActivation::kNone));
  graph.output = 4;
  graph.num_values = 5;
  return graph;
}

QuantPlan Plan(const Graph& graph) {
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, {}, PlanOptions{});
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *std::move(plan) : QuantPlan();
}

TEST(CrossLayerEqualizationTest, FindsPairsThroughZeroPaddingOnly) {
  Graph graph = ConvPadDepthwisePointwise();
  std::vector<EqualizablePair> pairs = FindEqualizablePairs(graph, Plan(graph));
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].producer, 0);
  EXPECT_EQ(pairs[0].consumer, 2);
  EXPECT_EQ(pairs[0].value, 1);
  EXPECT_TRUE(pairs[0].depthwise_consumer);
  EXPECT_EQ(pairs[1].producer, 2);
  EXPECT_EQ(pairs[1].consumer, 3);
  EXPECT_FALSE(pairs[1].depthwise_consumer);

  graph.nodes[1].pad_value = 1;  // padding with 1 does not scale with the channel
  pairs = FindEqualizablePairs(graph, Plan(graph));
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].producer, 2);
}

TEST(CrossLayerEqualizationTest, AValueWithTwoReadersIsLeftAlone) {
  Graph graph = ConvPadDepthwisePointwise();
  Node add;
  add.kind = OpKind::kAdd;
  add.inputs = {3, 3};
  add.output = 5;
  graph.nodes.push_back(add);
  graph.output = 5;
  graph.num_values = 6;
  const std::vector<EqualizablePair> pairs = FindEqualizablePairs(graph, Plan(graph));
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].value, 1);
}

// On the batch it measured, the rescaled graph computes what the original did, and behind a
// depthwise reader every channel that fires spans the largest one's range.
TEST(CrossLayerEqualizationTest, RescalingKeepsTheOutputAndEvensTheChannels) {
  Graph graph = ConvPadDepthwisePointwise();
  graph.nodes[0].weight = graph.nodes[0].weight * at::tensor({4.0f, 1.0f, 0.1f, 0.02f}).reshape({4, 1, 1, 1});
  const Graph original = graph;
  at::manual_seed(1);
  const at::Tensor batch = at::randn({8, 3, 6, 6});
  const std::vector<int> rescaled = EqualizeActivationRanges(graph, Plan(graph), {batch});
  EXPECT_EQ(rescaled, (std::vector<int>{1, 3}));
  const at::Tensor expected = RunGraph(original, batch);
  EXPECT_TRUE(at::allclose(RunGraph(graph, batch), expected, 1e-4, 1e-5));

  at::Tensor first_activation;
  RunGraph(graph, batch, [&](int value, at::Tensor& tensor) {
    if (value == 1) first_activation = tensor.amax({0, 2, 3});
  });
  const float largest = first_activation.max().item<float>();
  EXPECT_LE(largest, 6.0f);
  EXPECT_TRUE(at::allclose(first_activation, at::full_like(first_activation, largest), 1e-4)) << first_activation;
}

using Equalization = std::vector<int> (*)(Graph&, const QuantPlan&, const std::vector<at::Tensor>&);

// A whole torchvision MobileNetV2 (BatchNorm folded, ReLU6 fused) equalized on a batch: its
// expand -> depthwise and depthwise -> project pairs are rescaled, and on that batch its
// outputs are unchanged.
void ExpectMobileNetV2KeepsItsOutput(Equalization equalize) {
  absl::StatusOr<Graph> imported = ImportTorchScript((testing::TestModelsDir() / "mobilenet_v2.pt").string());
  ASSERT_TRUE(imported.ok()) << imported.status();
  Graph graph = *std::move(imported);
  ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
  FuseActivations(graph);
  const Graph original = graph;
  at::manual_seed(0);
  const at::Tensor batch = at::randn({4, 3, 64, 64});
  const std::vector<int> rescaled = equalize(graph, Plan(graph), {batch});
  EXPECT_GE(rescaled.size(), 30u);  // 17 blocks: 16 expand -> depthwise, 17 depthwise -> project
  const at::Tensor expected = RunGraph(original, batch);
  const double scale = expected.abs().max().item<double>();
  EXPECT_LE((RunGraph(graph, batch) - expected).abs().max().item<double>(), 1e-4 * scale);
}

TEST(CrossLayerEqualizationTest, MobileNetV2KeepsItsOutput) {
  ExpectMobileNetV2KeepsItsOutput(EqualizeActivationRanges);
}

// Behind a ReLU6 (U = 6): a channel that reached 6 (or passed it) keeps k = 1; one that
// reached 1.5 may grow to 4 or shrink; one that never fired is bounded by the cap only.
// Without a clip, the cap alone.
TEST(WeightEqualizationTest, HandComputedBounds) {
  const ScaleBounds saturated = WeightEqualizationBounds(6, 6);
  EXPECT_DOUBLE_EQ(saturated.low, 1);
  EXPECT_DOUBLE_EQ(saturated.high, 1);
  const ScaleBounds past_the_clip = WeightEqualizationBounds(6.5, 6);
  EXPECT_DOUBLE_EQ(past_the_clip.low, 1);
  EXPECT_DOUBLE_EQ(past_the_clip.high, 1);
  const ScaleBounds partial = WeightEqualizationBounds(1.5, 6);
  EXPECT_DOUBLE_EQ(partial.low, 1 / kMaxEqualizationScale);
  EXPECT_DOUBLE_EQ(partial.high, 4);
  const ScaleBounds silent = WeightEqualizationBounds(0, 6);
  EXPECT_DOUBLE_EQ(silent.low, 1 / kMaxEqualizationScale);
  EXPECT_DOUBLE_EQ(silent.high, kMaxEqualizationScale);
  const ScaleBounds unclipped = WeightEqualizationBounds(100, INFINITY);
  EXPECT_DOUBLE_EQ(unclipped.low, 1 / kMaxEqualizationScale);
  EXPECT_DOUBLE_EQ(unclipped.high, kMaxEqualizationScale);
}

// Producer ranges 1, 4, 0.25, 2 against reader ranges 4, 1, 1, 0: sqrt(4 / 1) = 2,
// sqrt(1 / 4) = 0.5, sqrt(1 / 0.25) = 2, and nothing to balance against an empty column. The
// second channel reached the clip (bounds [1, 1]): 1. The first, already scaled by 4 with a
// bound of 6, may move 6 / 4 = 1.5 of its 2.
TEST(WeightEqualizationTest, HandComputedSteps) {
  const std::vector<double> producer = {1, 4, 0.25, 2};
  const std::vector<double> reader = {4, 1, 1, 0};
  const std::vector<ScaleBounds> free(4);
  const std::vector<double> unscaled(4, 1.0);
  EXPECT_EQ(WeightEqualizationStep(producer, reader, free, unscaled), (std::vector<double>{2, 0.5, 2, 1}));
  std::vector<ScaleBounds> clipped = {WeightEqualizationBounds(1, 6), WeightEqualizationBounds(6, 6), free[2], free[3]};
  const std::vector<double> step = WeightEqualizationStep(producer, reader, clipped, {4, 1, 1, 1});
  EXPECT_DOUBLE_EQ(step[0], 1.5);
  EXPECT_DOUBLE_EQ(step[1], 1);
  EXPECT_DOUBLE_EQ(step[2], 2);
  EXPECT_DOUBLE_EQ(step[3], 1);
}

// On the batch it measured, the graph computes what it did, and where no clip binds, each
// channel's producer filter and reader column end with the same range.
TEST(WeightEqualizationTest, SweepsKeepTheOutputAndBalanceTheFilters) {
  Graph graph = ConvPadDepthwisePointwise();
  graph.nodes[0].activation = FusedActivation::kRelu;  // no clip: every pair balances fully
  graph.nodes[0].weight = graph.nodes[0].weight * at::tensor({4.0f, 1.0f, 0.1f, 0.02f}).reshape({4, 1, 1, 1});
  const Graph original = graph;
  at::manual_seed(1);
  const at::Tensor batch = at::randn({8, 3, 6, 6});
  const QuantPlan plan = Plan(graph);
  const std::vector<int> rescaled = EqualizeWeightRanges(graph, plan, {batch});
  EXPECT_EQ(rescaled, (std::vector<int>{1, 3}));
  EXPECT_TRUE(at::allclose(RunGraph(graph, batch), RunGraph(original, batch), 1e-4, 1e-5));
  for (const EqualizablePair& pair : FindEqualizablePairs(graph, plan)) {
    const at::Tensor producer = graph.nodes[static_cast<size_t>(pair.producer)].weight.abs().amax({1, 2, 3});
    const at::Tensor reader = pair.depthwise_consumer
                                  ? graph.nodes[static_cast<size_t>(pair.consumer)].weight.abs().amax({1, 2, 3})
                                  : graph.nodes[static_cast<size_t>(pair.consumer)].weight.abs().amax({0, 2, 3});
    EXPECT_TRUE(at::allclose(producer, reader, 1e-2)) << "pair at value " << pair.value << ": " << producer << reader;
  }
}

// The ReLU6 clips hold: a whole MobileNetV2 keeps its outputs on the batch it was equalized on.
TEST(WeightEqualizationTest, MobileNetV2KeepsItsOutput) {
  ExpectMobileNetV2KeepsItsOutput(EqualizeWeightRanges);
}

}  // namespace
}  // namespace ptq::core
