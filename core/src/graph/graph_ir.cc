#include "graph/graph_ir.h"

#include "absl/strings/str_cat.h"

namespace ptq::core {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kConv2d: return "conv2d";
    case OpKind::kLinear: return "linear";
    case OpKind::kBatchNorm: return "batch_norm";
    case OpKind::kRelu: return "relu";
    case OpKind::kHardtanh: return "hardtanh";
    case OpKind::kHardswish: return "hardswish";
    case OpKind::kHardsigmoid: return "hardsigmoid";
    case OpKind::kSigmoid: return "sigmoid";
    case OpKind::kAdd: return "add";
    case OpKind::kMul: return "mul";
    case OpKind::kAvgPool2d: return "avg_pool2d";
    case OpKind::kMaxPool2d: return "max_pool2d";
    case OpKind::kAdaptiveAvgPool2d: return "adaptive_avg_pool2d";
    case OpKind::kFlatten: return "flatten";
    case OpKind::kReshape: return "reshape";
    case OpKind::kCat: return "cat";
    case OpKind::kPad: return "pad";
    case OpKind::kMean: return "mean";
    case OpKind::kIdentity: return "identity";
  }
  return "unknown";
}

std::vector<std::vector<int>> ConsumersOf(const Graph& graph) {
  std::vector<std::vector<int>> consumers(static_cast<size_t>(graph.num_values));
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int value : graph.nodes[i].inputs) consumers[static_cast<size_t>(value)].push_back(static_cast<int>(i));
  }
  return consumers;
}

std::vector<int> ProducersOf(const Graph& graph) {
  std::vector<int> producers(static_cast<size_t>(graph.num_values), -1);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    producers[static_cast<size_t>(graph.nodes[i].output)] = static_cast<int>(i);
  }
  return producers;
}

std::vector<int> LastUses(const Graph& graph) {
  std::vector<int> last_use(static_cast<size_t>(graph.num_values), -1);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int value : graph.nodes[i].inputs) last_use[static_cast<size_t>(value)] = static_cast<int>(i);
  }
  return last_use;
}

bool IsWeightedLayer(const Node& node) {
  return node.kind == OpKind::kConv2d || node.kind == OpKind::kLinear;
}

std::string Describe(const Node& node) {
  return absl::StrCat(OpKindName(node.kind), " '", node.module_path, "'");
}

}  // namespace ptq::core
