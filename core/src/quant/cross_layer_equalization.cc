#include "quant/cross_layer_equalization.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "graph/executor.h"

namespace ptq::core {
namespace {

bool IsPlainOrDepthwiseConv(const Node& node) {
  if (node.kind != OpKind::kConv2d) return false;
  return node.groups == 1 || (node.groups == node.weight.size(0) && node.weight.size(1) == 1);
}

bool IsDepthwise(const Node& node) { return node.kind == OpKind::kConv2d && node.groups > 1; }

// Ops between the pair that keep channels apart and commute with a positive per-channel scale.
bool PassesScaleThrough(const Node& node) {
  return node.kind == OpKind::kIdentity || (node.kind == OpKind::kPad && node.pad_value == 0);
}

}  // namespace

std::vector<EqualizablePair> FindEqualizablePairs(const Graph& graph, const QuantPlan& plan) {
  const std::vector<std::vector<int>> consumers = ConsumersOf(graph);
  std::vector<EqualizablePair> pairs;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& producer = graph.nodes[i];
    if (!plan.node_is_int8[i] || !IsPlainOrDepthwiseConv(producer)) continue;
    const int value = producer.output;
    const std::optional<ActivationPoint>& point = plan.points[static_cast<size_t>(value)];
    if (!point || point->source != PointSource::kObserved) continue;
    int reading = value;
    int reader = -1;
    while (reading != graph.output && consumers[static_cast<size_t>(reading)].size() == 1) {
      const int next = consumers[static_cast<size_t>(reading)].front();
      if (!PassesScaleThrough(graph.nodes[static_cast<size_t>(next)])) {
        reader = next;
        break;
      }
      reading = graph.nodes[static_cast<size_t>(next)].output;
    }
    if (reader < 0) continue;
    const Node& consumer = graph.nodes[static_cast<size_t>(reader)];
    if (!plan.node_is_int8[static_cast<size_t>(reader)] || !IsPlainOrDepthwiseConv(consumer)) continue;
    const int64_t channels = producer.weight.size(0);
    if (consumer.groups == 1 ? consumer.weight.size(1) != channels : consumer.groups != channels) continue;
    pairs.push_back({static_cast<int>(i), reader, value, IsDepthwise(consumer)});
  }
  return pairs;
}

std::vector<double> EqualizationScales(const std::vector<double>& channel_ranges, bool depthwise_consumer) {
  const double largest = channel_ranges.empty() ? 0 : *std::max_element(channel_ranges.begin(), channel_ranges.end());
  std::vector<double> scales;
  scales.reserve(channel_ranges.size());
  for (double range : channel_ranges) {
    if (range <= 0) {
      scales.push_back(1);
      continue;
    }
    const double ratio = largest / range;
    scales.push_back(std::min(kMaxEqualizationScale, depthwise_consumer ? ratio : std::sqrt(ratio)));
  }
  return scales;
}

void RescaleChannels(Graph& graph, const EqualizablePair& pair, const at::Tensor& scales) {
  Node& producer = graph.nodes[static_cast<size_t>(pair.producer)];
  Node& consumer = graph.nodes[static_cast<size_t>(pair.consumer)];
  std::vector<int64_t> along_dim0(static_cast<size_t>(producer.weight.dim()), 1);
  along_dim0[0] = scales.size(0);
  producer.weight = producer.weight * scales.reshape(along_dim0);
  if (producer.bias.defined()) producer.bias = producer.bias * scales;
  if (pair.depthwise_consumer) {
    consumer.weight = consumer.weight / scales.reshape(along_dim0);
  } else {
    std::vector<int64_t> along_dim1(static_cast<size_t>(consumer.weight.dim()), 1);
    along_dim1[1] = scales.size(0);
    consumer.weight = consumer.weight / scales.reshape(along_dim1);
  }
}

std::vector<int> EqualizeActivationRanges(Graph& graph, const QuantPlan& plan, const std::vector<at::Tensor>& batches) {
  const std::vector<EqualizablePair> pairs = FindEqualizablePairs(graph, plan);
  std::vector<int> rescaled;
  if (pairs.empty()) return rescaled;
  std::map<int, at::Tensor> ranges;  // by value id: per-channel max |x|
  for (const EqualizablePair& pair : pairs) ranges[pair.value] = at::Tensor();
  const ValueHook measure = [&ranges](int value, at::Tensor& tensor) {
    auto it = ranges.find(value);
    if (it == ranges.end()) return;
    const at::Tensor batch_range = tensor.abs().amax({0, 2, 3});
    it->second = it->second.defined() ? at::maximum(it->second, batch_range) : batch_range;
  };
  for (const at::Tensor& batch : batches) RunGraph(graph, batch, measure);
  for (const EqualizablePair& pair : pairs) {
    const at::Tensor range = ranges.at(pair.value).to(at::kDouble).cpu().contiguous();
    const std::vector<double> channel_ranges(range.data_ptr<double>(), range.data_ptr<double>() + range.numel());
    const std::vector<double> scales = EqualizationScales(channel_ranges, pair.depthwise_consumer);
    const at::Tensor weight = graph.nodes[static_cast<size_t>(pair.producer)].weight;
    RescaleChannels(graph, pair,
                    at::tensor(scales, at::TensorOptions().dtype(at::kDouble)).to(weight.device(), weight.scalar_type()));
    rescaled.push_back(pair.value);
  }
  return rescaled;
}

}  // namespace ptq::core
