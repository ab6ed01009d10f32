#include "graph/graph_passes.h"

#include <gtest/gtest.h>

#include <cmath>

#include "graph/executor.h"
#include "graph/torchscript_import.h"
#include "quant/quant_plan.h"
#include "test_env.h"

namespace ptq::core {
namespace {

Graph Import(const std::string& name) {
  absl::StatusOr<Graph> graph = ImportTorchScript((testing::TestModelsDir() / (name + ".pt")).string());
  EXPECT_TRUE(graph.ok()) << graph.status();
  return graph.ok() ? *std::move(graph) : Graph();
}

int Count(const Graph& graph, OpKind kind) {
  int count = 0;
  for (const Node& node : graph.nodes) count += node.kind == kind;
  return count;
}

TEST(FoldBatchNormTest, FoldingEveryPairKeepsTheOutput) {
  for (const char* name : {"mobilenet_v2", "mobilenet_v3_large", "resnet18"}) {
    Graph graph = Import(name);
    const Graph original = graph;
    ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
    EXPECT_EQ(Count(graph, OpKind::kBatchNorm), 0) << name;
    at::manual_seed(0);
    const at::Tensor input = at::randn({2, 3, 96, 96});
    const float diff = (RunGraph(graph, input) - RunGraph(original, input)).abs().max().item<float>();
    EXPECT_LE(diff, 1e-4f) << name;
  }
}

TEST(FoldBatchNormTest, FuseListFoldsOnlyTheNamedPairs) {
  Graph graph = Import("mobilenet_v2");
  const int batch_norms = Count(graph, OpKind::kBatchNorm);
  ASSERT_TRUE(FoldBatchNorms(graph, {{"features.0.0", "features.0.1"}, {"features.1.conv.0.0", "features.1.conv.0.1"}}).ok());
  EXPECT_EQ(Count(graph, OpKind::kBatchNorm), batch_norms - 2);
  for (const Node& node : graph.nodes) {
    if (node.module_path == "features.0.0") {
      EXPECT_EQ(node.folded_batch_norm, "features.0.1");
    }
  }
}

TEST(FoldBatchNormTest, FuseListErrorsNameTheEntry) {
  const struct {
    std::vector<std::vector<std::string>> fuse_list;
    const char* expected;
  } cases[] = {
      {{{"features.0.0", "features.0.1"}, {"features.99.0", "features.0.1"}},
       "ptq.fuse_list[1]: no conv or linear layer named 'features.99.0'"},
      {{{"features.0.0", "features.0.9"}}, "ptq.fuse_list[0]: no batch_norm layer named 'features.0.9'"},
      {{{"features.0.0", "features.1.conv.0.1"}}, "does not directly follow 'features.0.0'"},
      {{{"features.0.0"}}, "must name two layers"},
  };
  for (const auto& c : cases) {
    Graph graph = Import("mobilenet_v2");
    const absl::Status status = FoldBatchNorms(graph, c.fuse_list);
    EXPECT_TRUE(absl::IsInvalidArgument(status));
    EXPECT_NE(status.message().find(c.expected), absl::string_view::npos) << status;
  }
}

TEST(FuseActivationsTest, ConvBatchNormRelu6BecomesOneUnit) {
  Graph graph = Import("mobilenet_v2");
  ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
  const Graph folded = graph;
  FuseActivations(graph);
  EXPECT_EQ(Count(graph, OpKind::kHardtanh), 0);  // all 35 ReLU6 follow a conv
  int fused = 0;
  for (const Node& node : graph.nodes) fused += node.activation == FusedActivation::kRelu6;
  EXPECT_EQ(fused, 35);
  at::manual_seed(0);
  const at::Tensor input = at::randn({1, 3, 96, 96});
  EXPECT_LE((RunGraph(graph, input) - RunGraph(folded, input)).abs().max().item<float>(), 1e-5f);
}

TEST(SeBlockTest, FindsTheEightBlocksOfMobileNetV3LargeAndNoneInV2) {
  Graph large = Import("mobilenet_v3_large");
  std::vector<SeBlock> blocks = FindSeBlocks(large);
  ASSERT_EQ(blocks.size(), 8u);
  EXPECT_EQ(blocks[0].path, "features.4.block.2");
  EXPECT_EQ(large.nodes[static_cast<size_t>(blocks[0].fc1)].module_path, "features.4.block.2.fc1");
  EXPECT_EQ(large.nodes[static_cast<size_t>(blocks[0].fc2)].module_path, "features.4.block.2.fc2");
  // Still found once ReLU is fused into fc1.
  ASSERT_TRUE(FoldBatchNorms(large, {}).ok());
  FuseActivations(large);
  EXPECT_EQ(FindSeBlocks(large).size(), 8u);

  EXPECT_TRUE(FindSeBlocks(Import("mobilenet_v2")).empty());
  EXPECT_EQ(FindSeBlocks(Import("mobilenet_v3_small")).size(), 9u);
}

TEST(QuantPlanTest, SkipSeQuantKeepsTheInnerLayersInFloat) {
  Graph graph = Import("mobilenet_v3_large");
  const std::vector<SeBlock> blocks = FindSeBlocks(graph);
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, blocks, PlanOptions{{}, true, {}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (const SeBlock& block : blocks) {
    EXPECT_FALSE(plan->node_is_int8[static_cast<size_t>(block.fc1)]);
    EXPECT_FALSE(plan->node_is_int8[static_cast<size_t>(block.fc2)]);
    EXPECT_TRUE(plan->node_is_int8[static_cast<size_t>(block.mul)]);
    EXPECT_NE(plan->float_reason[static_cast<size_t>(block.fc1)].find("skip_se_quant"), std::string::npos);
  }
  absl::StatusOr<QuantPlan> quantized_se = PlanQuantization(graph, blocks, PlanOptions{{}, false, {}});
  ASSERT_TRUE(quantized_se.ok());
  EXPECT_TRUE(quantized_se->node_is_int8[static_cast<size_t>(blocks[0].fc1)]);
}

// A ReLU6 unit's output never exceeds 6, so its point says so (thresholds are capped there);
// the projection convs of MobileNetV2 have no activation and no bound.
TEST(QuantPlanTest, ReluSixOutputsAreBoundedBySix) {
  Graph graph = Import("mobilenet_v2");
  ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
  FuseActivations(graph);
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, {}, PlanOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status();
  int bounded = 0, unbounded_convs = 0;
  for (const Node& node : graph.nodes) {
    if (node.kind != OpKind::kConv2d) continue;
    const ActivationPoint& point = *plan->points[static_cast<size_t>(node.output)];
    if (node.activation == FusedActivation::kRelu6) {
      EXPECT_EQ(point.upper_bound, 6.0) << node.module_path;
      ++bounded;
    } else {
      EXPECT_TRUE(std::isinf(point.upper_bound)) << node.module_path;
      ++unbounded_convs;
    }
  }
  EXPECT_EQ(bounded, 35);
  EXPECT_EQ(unbounded_convs, 17);
}

TEST(QuantPlanTest, SkipLayersNamesMustExist) {
  Graph graph = Import("mobilenet_v2");
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, {}, PlanOptions{{"classifier.1"}, false, {}});
  ASSERT_TRUE(plan.ok());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].module_path == "classifier.1") {
      EXPECT_FALSE(plan->node_is_int8[i]);
    }
  }
  absl::Status missing = PlanQuantization(graph, {}, PlanOptions{{"classifier.7"}, false, {}}).status();
  EXPECT_NE(missing.message().find("ptq.skip_layers: no conv or linear layer named 'classifier.7'"),
            absl::string_view::npos)
      << missing;
}

TEST(QuantPlanTest, SchemesFollowTheValueRange) {
  Graph graph = Import("mobilenet_v2");
  ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
  FuseActivations(graph);
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, {}, PlanOptions{});
  ASSERT_TRUE(plan.ok());
  // The model input is signed; a conv+ReLU6 unit's output is non-negative; the projection
  // conv without activation (linear bottleneck) is signed.
  EXPECT_EQ(plan->points[static_cast<size_t>(graph.input)]->scheme, ActivationScheme::kSigned);
  for (const Node& node : graph.nodes) {
    if (node.kind != OpKind::kConv2d) continue;
    const ActivationPoint& point = *plan->points[static_cast<size_t>(node.output)];
    EXPECT_EQ(point.scheme, node.activation == FusedActivation::kRelu6 ? ActivationScheme::kUnsigned
                                                                         : ActivationScheme::kSigned)
        << node.module_path;
  }
}

TEST(QuantPlanTest, HardswishOutputsGetTheirOwnRange) {
  Graph graph = Import("mobilenet_v3_small");
  ASSERT_TRUE(FoldBatchNorms(graph, {}).ok());
  FuseActivations(graph);
  absl::StatusOr<QuantPlan> plan = PlanQuantization(graph, FindSeBlocks(graph), PlanOptions{});
  ASSERT_TRUE(plan.ok());
  int hardswish_outputs = 0;
  for (const Node& node : graph.nodes) {
    const std::optional<ActivationPoint>& point = plan->points[static_cast<size_t>(node.output)];
    if (!point) continue;
    if (node.kind == OpKind::kHardswish) {
      ++hardswish_outputs;
      EXPECT_EQ(point->scheme, ActivationScheme::kHardswishRange) << node.module_path;
    }
    // Pooling a hardswish output keeps its range (and shares its parameters).
    if (node.kind == OpKind::kAdaptiveAvgPool2d &&
        graph.nodes[static_cast<size_t>(ProducersOf(graph)[static_cast<size_t>(node.inputs[0])])].kind ==
            OpKind::kHardswish) {
      EXPECT_EQ(point->scheme, ActivationScheme::kHardswishRange) << node.module_path;
    }
  }
  EXPECT_GT(hardswish_outputs, 10);
}

}  // namespace
}  // namespace ptq::core
