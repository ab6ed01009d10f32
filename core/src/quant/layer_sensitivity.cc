#include "quant/layer_sensitivity.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "graph/executor.h"
#include "ptq/core/batch.h"
#include "ptq/core/metrics.h"

namespace ptq::core {
namespace {

at::Tensor ToHostLogits(const at::Tensor& logits) {
  return logits.to(at::kCPU, at::kFloat).reshape({logits.size(0), -1}).contiguous();
}

bool Cancelled(const std::atomic<bool>* cancelled) { return cancelled != nullptr && cancelled->load(); }

}  // namespace

int64_t HeldOutImages::labelled() const {
  return std::count_if(labels.begin(), labels.end(), [](int32_t label) { return label != kNoLabel; });
}

void ComputeFp32Logits(const QuantizedModel& model, HeldOutImages& held_out) {
  held_out.fp32_logits.clear();
  for (const at::Tensor& batch : held_out.batches) held_out.fp32_logits.push_back(ToHostLogits(RunFp32(model, batch)));
}

HeldOutScore CompareLogits(const at::Tensor& reference, const at::Tensor& candidate,
                           const std::vector<int32_t>& labels) {
  HeldOutScore score;
  const int64_t n = reference.size(0);
  const int64_t classes = reference.size(1);
  const float* ref = reference.data_ptr<float>();
  const float* cand = candidate.data_ptr<float>();
  int64_t agreed = 0, reference_correct = 0, candidate_correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ref_top = ArgMax(ref + i * classes, classes);
    const int64_t cand_top = ArgMax(cand + i * classes, classes);
    agreed += ref_top == cand_top;
    const int32_t label = labels[static_cast<size_t>(i)];
    if (label == kNoLabel) continue;
    ++score.labelled;
    reference_correct += ref_top == label;
    candidate_correct += cand_top == label;
  }
  score.images = n;
  score.agreement_top1 = n == 0 ? 0 : 100.0 * static_cast<double>(agreed) / static_cast<double>(n);
  score.top1_drop = score.labelled == 0 ? 0
                                        : 100.0 * static_cast<double>(reference_correct - candidate_correct) /
                                              static_cast<double>(score.labelled);
  const double signal = reference.to(at::kDouble).pow(2).sum().item<double>();
  const double noise = (candidate - reference).to(at::kDouble).pow(2).sum().item<double>();
  score.logit_sqnr_db = noise == 0 ? INFINITY : 10.0 * std::log10(signal / noise);
  return score;
}

HeldOutScore ScoreOnHeldOut(const QuantizedModel& model, const HeldOutImages& held_out) {
  std::vector<at::Tensor> simulated;
  for (const at::Tensor& batch : held_out.batches) simulated.push_back(ToHostLogits(RunSimulated(model, batch)));
  return CompareLogits(at::cat(held_out.fp32_logits), at::cat(simulated), held_out.labels);
}

QuantizedModel OnlyThisLayerInt8(const QuantizedModel& model, size_t index) {
  QuantizedModel variant = model;
  variant.simulated = model.fp32;
  variant.simulated.nodes[index] = model.simulated.nodes[index];
  variant.activations.assign(model.activations.size(), std::nullopt);
  const Node& node = model.fp32.nodes[index];
  for (int value : {node.inputs[0], node.output}) {
    variant.activations[static_cast<size_t>(value)] = model.activations[static_cast<size_t>(value)];
  }
  variant.int8_kernels.assign(model.int8_kernels.size(), std::nullopt);
  variant.int8_kernels[index] = model.int8_kernels[index];
  return variant;
}

QuantizedModel OnlyThisLayerFloat(const QuantizedModel& model, size_t index) {
  QuantizedModel variant = model;
  variant.simulated.nodes[index] = model.fp32.nodes[index];
  variant.int8_kernels[index] = std::nullopt;
  return variant;
}

QuantizedModel OnlyWeightsInt8(const QuantizedModel& model) {
  QuantizedModel variant = model;
  variant.activations.assign(model.activations.size(), std::nullopt);
  variant.int8_kernels.assign(model.int8_kernels.size(), std::nullopt);
  return variant;
}

QuantizedModel OnlyActivationsInt8(const QuantizedModel& model) {
  QuantizedModel variant = model;
  variant.simulated = model.fp32;
  variant.int8_kernels.assign(model.int8_kernels.size(), std::nullopt);
  return variant;
}

ErrorSources MeasureErrorSources(const QuantizedModel& model, const HeldOutImages& held_out) {
  return {ScoreOnHeldOut(OnlyWeightsInt8(model), held_out), ScoreOnHeldOut(OnlyActivationsInt8(model), held_out)};
}

std::vector<std::pair<std::string, double>> MacPercentByLayer(const Graph& graph, const at::Tensor& input) {
  std::map<int, size_t> layer_of_value;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (IsWeightedLayer(graph.nodes[i])) layer_of_value[graph.nodes[i].output] = i;
  }
  std::vector<std::pair<std::string, double>> macs;
  double total = 0;
  RunGraph(graph, input.narrow(0, 0, 1), [&](int value, at::Tensor& tensor) {
    auto layer = layer_of_value.find(value);
    if (layer == layer_of_value.end()) return;
    const Node& node = graph.nodes[layer->second];
    const double count = static_cast<double>(tensor.numel()) *
                         static_cast<double>(node.weight.numel() / node.weight.size(0));
    macs.emplace_back(node.module_path, count);
    total += count;
  });
  for (auto& [path, count] : macs) count = total == 0 ? 0 : 100.0 * count / total;
  return macs;
}

absl::StatusOr<std::vector<LayerSensitivity>> MeasureLayerSensitivity(
    const QuantizedModel& model, const HeldOutImages& held_out, const std::function<void()>& progress,
    const std::atomic<bool>* cancelled) {
  std::map<std::string, double> sqnr;
  for (const QuantizedModel::LayerSqnr& layer : model.layer_sqnr) sqnr[layer.module_path] = layer.sqnr_db;
  std::map<std::string, double> mac_percent;
  for (const auto& [path, percent] : MacPercentByLayer(model.fp32, held_out.batches.front())) {
    mac_percent[path] = percent;
  }
  std::vector<LayerSensitivity> layers;
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    const Node& node = model.fp32.nodes[i];
    if (!model.plan.node_is_int8[i] || !IsWeightedLayer(node)) continue;
    if (Cancelled(cancelled)) return absl::CancelledError("sensitivity analysis cancelled");
    LayerSensitivity layer;
    layer.module_path = node.module_path;
    layer.op = OpKindName(node.kind);
    layer.sqnr_db = sqnr.count(node.module_path) != 0 ? sqnr[node.module_path] : NAN;
    layer.mac_percent = mac_percent[node.module_path];
    layer.only_this_int8 = ScoreOnHeldOut(OnlyThisLayerInt8(model, i), held_out);
    layer.only_this_float = ScoreOnHeldOut(OnlyThisLayerFloat(model, i), held_out);
    layers.push_back(std::move(layer));
    if (progress) progress();
  }
  return layers;
}

}  // namespace ptq::core
