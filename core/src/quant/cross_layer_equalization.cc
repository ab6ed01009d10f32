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

namespace {

std::vector<double> ToVector(const at::Tensor& values) {
  const at::Tensor cpu = values.to(at::kDouble).cpu().contiguous();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
}

// Each pair's activation: its channels' largest |value| over `batches`, by value id.
std::map<int, std::vector<double>> MeasureChannelRanges(const Graph& graph, const std::vector<EqualizablePair>& pairs,
                                                        const std::vector<at::Tensor>& batches) {
  std::map<int, at::Tensor> ranges;
  for (const EqualizablePair& pair : pairs) ranges[pair.value] = at::Tensor();
  const ValueHook measure = [&ranges](int value, at::Tensor& tensor) {
    auto it = ranges.find(value);
    if (it == ranges.end()) return;
    const at::Tensor batch_range = tensor.abs().amax({0, 2, 3});
    it->second = it->second.defined() ? at::maximum(it->second, batch_range) : batch_range;
  };
  for (const at::Tensor& batch : batches) RunGraph(graph, batch, measure);
  std::map<int, std::vector<double>> measured;
  for (const auto& [value, range] : ranges) measured[value] = ToVector(range);
  return measured;
}

void Rescale(Graph& graph, const EqualizablePair& pair, const std::vector<double>& scales) {
  const at::Tensor& weight = graph.nodes[static_cast<size_t>(pair.producer)].weight;
  RescaleChannels(graph, pair,
                  at::tensor(scales, at::TensorOptions().dtype(at::kDouble)).to(weight.device(), weight.scalar_type()));
}

// The largest |weight| of each filter the pair's channels pass through: the producer's output
// filters, and the reader's input columns (its filters, when depthwise).
std::vector<double> ProducerRanges(const Graph& graph, const EqualizablePair& pair) {
  return ToVector(graph.nodes[static_cast<size_t>(pair.producer)].weight.abs().amax({1, 2, 3}));
}
std::vector<double> ReaderRanges(const Graph& graph, const EqualizablePair& pair) {
  const at::Tensor weight = graph.nodes[static_cast<size_t>(pair.consumer)].weight.abs();
  return ToVector(pair.depthwise_consumer ? weight.amax({1, 2, 3}) : weight.amax({0, 2, 3}));
}

}  // namespace

std::vector<int> EqualizeActivationRanges(Graph& graph, const QuantPlan& plan, const std::vector<at::Tensor>& batches) {
  const std::vector<EqualizablePair> pairs = FindEqualizablePairs(graph, plan);
  std::vector<int> rescaled;
  if (pairs.empty()) return rescaled;
  const std::map<int, std::vector<double>> ranges = MeasureChannelRanges(graph, pairs, batches);
  for (const EqualizablePair& pair : pairs) {
    Rescale(graph, pair, EqualizationScales(ranges.at(pair.value), pair.depthwise_consumer));
    rescaled.push_back(pair.value);
  }
  return rescaled;
}

ScaleBounds WeightEqualizationBounds(double channel_range, double upper_bound) {
  ScaleBounds bounds;
  if (!std::isfinite(upper_bound)) return bounds;
  if (channel_range >= upper_bound) return ScaleBounds{1, 1};
  if (channel_range > 0) bounds.high = std::min(bounds.high, upper_bound / channel_range);
  return bounds;
}

std::vector<double> WeightEqualizationStep(const std::vector<double>& producer_ranges,
                                           const std::vector<double>& reader_ranges,
                                           const std::vector<ScaleBounds>& bounds, const std::vector<double>& applied) {
  std::vector<double> step(producer_ranges.size(), 1.0);
  for (size_t c = 0; c < step.size(); ++c) {
    if (producer_ranges[c] <= 0 || reader_ranges[c] <= 0) continue;
    const double wanted = applied[c] * std::sqrt(reader_ranges[c] / producer_ranges[c]);
    step[c] = std::clamp(wanted, bounds[c].low, bounds[c].high) / applied[c];
  }
  return step;
}

std::vector<int> EqualizeWeightRanges(Graph& graph, const QuantPlan& plan, const std::vector<at::Tensor>& batches) {
  const std::vector<EqualizablePair> pairs = FindEqualizablePairs(graph, plan);
  std::vector<int> rescaled;
  if (pairs.empty()) return rescaled;
  const std::map<int, std::vector<double>> ranges = MeasureChannelRanges(graph, pairs, batches);
  std::vector<std::vector<ScaleBounds>> bounds;
  std::vector<std::vector<double>> applied;
  for (const EqualizablePair& pair : pairs) {
    const double upper_bound = plan.points[static_cast<size_t>(pair.value)]->upper_bound;
    std::vector<ScaleBounds>& pair_bounds = bounds.emplace_back();
    for (double range : ranges.at(pair.value)) pair_bounds.push_back(WeightEqualizationBounds(range, upper_bound));
    applied.emplace_back(pair_bounds.size(), 1.0);
  }
  for (int sweep = 0; sweep < kWeightEqualizationSweeps; ++sweep) {
    double largest_move = 0;
    for (size_t p = 0; p < pairs.size(); ++p) {
      const std::vector<double> step =
          WeightEqualizationStep(ProducerRanges(graph, pairs[p]), ReaderRanges(graph, pairs[p]), bounds[p], applied[p]);
      for (size_t c = 0; c < step.size(); ++c) {
        applied[p][c] *= step[c];
        largest_move = std::max(largest_move, std::abs(std::log(step[c])));
      }
      Rescale(graph, pairs[p], step);
    }
    if (largest_move < kWeightEqualizationTolerance) break;
  }
  for (const EqualizablePair& pair : pairs) rescaled.push_back(pair.value);
  return rescaled;
}

}  // namespace ptq::core
