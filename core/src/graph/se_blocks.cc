#include <algorithm>

#include "graph/graph_passes.h"

namespace ptq::core {
namespace {

bool IsGlobalPool(const Node& node) {
  if (node.kind == OpKind::kAdaptiveAvgPool2d) {
    return node.pool.output_size == std::vector<int64_t>{1, 1} ||
           node.pool.output_size == std::vector<int64_t>{1};
  }
  return node.kind == OpKind::kMean && node.keepdim &&
         node.dims == std::vector<int64_t>{2, 3};
}

bool IsActivation(const Node& node) {
  return node.kind == OpKind::kRelu || node.kind == OpKind::kHardtanh ||
         node.kind == OpKind::kHardswish || node.kind == OpKind::kSigmoid;
}

// Longest common dotted prefix of two module paths ("a.b.fc1", "a.b.fc2" -> "a.b").
std::string CommonPath(const std::string& a, const std::string& b) {
  size_t end = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()) && a[i] == b[i]; ++i) {
    if (a[i] == '.') end = i;
  }
  return a.substr(0, end);
}

}  // namespace

std::vector<SeBlock> FindSeBlocks(const Graph& graph) {
  const std::vector<int> producers = ProducersOf(graph);
  auto producer_of = [&](int value) -> const Node* {
    const int index = producers[static_cast<size_t>(value)];
    return index < 0 ? nullptr : &graph.nodes[static_cast<size_t>(index)];
  };
  auto index_of = [&](const Node* node) { return static_cast<int>(node - graph.nodes.data()); };

  std::vector<SeBlock> blocks;
  for (size_t m = 0; m < graph.nodes.size(); ++m) {
    const Node& mul = graph.nodes[m];
    if (mul.kind != OpKind::kMul || mul.inputs.size() != 2) continue;
    for (int gate_side = 0; gate_side < 2; ++gate_side) {
      const int block_input = mul.inputs[static_cast<size_t>(1 - gate_side)];
      const Node* gate = producer_of(mul.inputs[static_cast<size_t>(gate_side)]);
      if (gate == nullptr ||
          (gate->kind != OpKind::kHardsigmoid && gate->kind != OpKind::kSigmoid)) {
        continue;
      }
      const Node* fc2 = producer_of(gate->inputs[0]);
      if (fc2 == nullptr || !IsWeightedLayer(*fc2)) continue;
      const Node* fc1 = producer_of(fc2->inputs[0]);
      if (fc1 != nullptr && IsActivation(*fc1)) fc1 = producer_of(fc1->inputs[0]);  // unfused
      if (fc1 == nullptr || !IsWeightedLayer(*fc1)) continue;
      const Node* pool = producer_of(fc1->inputs[0]);
      if (pool == nullptr || !IsGlobalPool(*pool) || pool->inputs[0] != block_input) continue;
      blocks.push_back(SeBlock{index_of(pool), index_of(fc1), index_of(fc2), index_of(gate),
                               static_cast<int>(m), CommonPath(fc1->module_path, fc2->module_path)});
      break;
    }
  }
  return blocks;
}

}  // namespace ptq::core
