#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "graph/graph_passes.h"

namespace ptq::core {
namespace {

// Folds batch norm `bn` into `layer` (per output channel = dim 0 of the weight).
void Fold(Node& layer, const Node& bn) {
  const at::Tensor gain = bn.weight / at::sqrt(bn.running_var + bn.eps);
  std::vector<int64_t> per_channel(static_cast<size_t>(layer.weight.dim()), 1);
  per_channel[0] = -1;
  layer.weight = (layer.weight * gain.reshape(per_channel)).contiguous();
  const at::Tensor bias = layer.bias.defined() ? layer.bias : at::zeros_like(bn.running_mean);
  layer.bias = ((bias - bn.running_mean) * gain + bn.bias).contiguous();
  layer.output = bn.output;
  layer.folded_batch_norm = bn.module_path;
}

// Removes the nodes whose index is in `doomed`, keeping order.
void EraseNodes(Graph& graph, const std::set<int>& doomed) {
  std::vector<Node> kept;
  kept.reserve(graph.nodes.size() - doomed.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (doomed.count(static_cast<int>(i)) == 0) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

}  // namespace

absl::Status FoldBatchNorms(Graph& graph, const std::vector<std::vector<std::string>>& fuse_list) {
  const std::vector<std::vector<int>> consumers = ConsumersOf(graph);
  const std::vector<int> producers = ProducersOf(graph);
  // Foldable pairs: layer index -> batch norm index, and by module names.
  std::map<std::pair<std::string, std::string>, std::pair<int, int>> pairs;
  std::set<std::string> layer_names, bn_names;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    if (IsWeightedLayer(node)) layer_names.insert(node.module_path);
    if (node.kind != OpKind::kBatchNorm) continue;
    bn_names.insert(node.module_path);
    const int producer = producers[static_cast<size_t>(node.inputs[0])];
    if (producer < 0 || !IsWeightedLayer(graph.nodes[static_cast<size_t>(producer)])) continue;
    if (consumers[static_cast<size_t>(node.inputs[0])].size() != 1) continue;
    pairs[{graph.nodes[static_cast<size_t>(producer)].module_path, node.module_path}] = {
        producer, static_cast<int>(i)};
  }

  std::vector<std::pair<int, int>> to_fold;
  if (fuse_list.empty()) {
    for (const auto& [names, indices] : pairs) to_fold.push_back(indices);
  } else {
    for (size_t g = 0; g < fuse_list.size(); ++g) {
      const std::vector<std::string>& group = fuse_list[g];
      const std::string where = absl::StrCat("ptq.fuse_list[", g, "]");
      if (group.size() != 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, " must name two layers [conv_or_linear, batch_norm], got ", group.size()));
      }
      if (layer_names.count(group[0]) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": no conv or linear layer named '", group[0], "'"));
      }
      if (bn_names.count(group[1]) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": no batch_norm layer named '", group[1], "'"));
      }
      auto it = pairs.find({group[0], group[1]});
      if (it == pairs.end()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": '", group[1],
                                                       "' does not directly follow '", group[0],
                                                       "', so they cannot be folded"));
      }
      to_fold.push_back(it->second);
    }
  }

  std::set<int> doomed;
  for (const auto& [layer, bn] : to_fold) {
    if (!doomed.insert(bn).second) continue;  // listed twice
    Fold(graph.nodes[static_cast<size_t>(layer)], graph.nodes[static_cast<size_t>(bn)]);
  }
  EraseNodes(graph, doomed);
  return absl::OkStatus();
}

void FuseActivations(Graph& graph) {
  const std::vector<std::vector<int>> consumers = ConsumersOf(graph);
  const std::vector<int> producers = ProducersOf(graph);
  std::set<int> doomed;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& act = graph.nodes[i];
    const bool relu = act.kind == OpKind::kRelu;
    const bool relu6 = act.kind == OpKind::kHardtanh && act.min_value == 0 && act.max_value == 6;
    if (!relu && !relu6) continue;
    const int producer = producers[static_cast<size_t>(act.inputs[0])];
    if (producer < 0) continue;
    Node& layer = graph.nodes[static_cast<size_t>(producer)];
    if (!IsWeightedLayer(layer) || layer.activation != FusedActivation::kNone) continue;
    if (consumers[static_cast<size_t>(act.inputs[0])].size() != 1) continue;
    layer.activation = relu ? FusedActivation::kRelu : FusedActivation::kRelu6;
    layer.output = act.output;
    doomed.insert(static_cast<int>(i));
  }
  EraseNodes(graph, doomed);
}

}  // namespace ptq::core
