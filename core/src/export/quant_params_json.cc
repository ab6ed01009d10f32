#include "export/quant_params_json.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace ptq::core {
namespace {

using nlohmann::json;

const char* SourceName(PointSource source) {
  switch (source) {
    case PointSource::kObserved: return "observed";
    case PointSource::kFixedUnitInterval: return "fixed_unit_interval";
    case PointSource::kSameAsInput: return "same_as_input";
  }
  return "unknown";
}

const char* ActivationName(FusedActivation activation) {
  switch (activation) {
    case FusedActivation::kNone: return "none";
    case FusedActivation::kRelu: return "relu";
    case FusedActivation::kRelu6: return "relu6";
  }
  return "none";
}

std::vector<float> ToVector(const at::Tensor& tensor) {
  const at::Tensor cpu = tensor.to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
}

}  // namespace

std::string QuantParamsJson(const QuantizedModel& model, const PtqConfig& config) {
  const std::vector<int> producers = ProducersOf(model.fp32);
  auto producer_of = [&](int value) -> const Node* {
    const int index = producers[static_cast<size_t>(value)];
    return index < 0 ? nullptr : &model.fp32.nodes[static_cast<size_t>(index)];
  };

  json activations = json::array();
  for (size_t v = 0; v < model.plan.points.size(); ++v) {
    const std::optional<ActivationPoint>& point = model.plan.points[v];
    if (!point) continue;
    const Node* producer = producer_of(static_cast<int>(v));
    json entry = {
        {"module_path", point->name},
        {"op", producer == nullptr ? "input" : OpKindName(producer->kind)},
        {"scheme", ActivationSchemeName(point->scheme)},
        {"source", SourceName(point->source)},
        {"observer", point->source == PointSource::kObserved ? json(model.activation_quantizer) : json(nullptr)},
        // Its channels rescaled by cross-layer equalization (ptq.equalize), and its readers' weights with them.
        {"equalized", std::find(model.equalized_values.begin(), model.equalized_values.end(), static_cast<int>(v)) !=
                          model.equalized_values.end()},
    };
    if (point->source == PointSource::kSameAsInput) {
      entry["shares_parameters_of"] = model.plan.points[static_cast<size_t>(point->same_as)]->name;
    }
    if (const std::optional<ActivationQParams>& qparams = model.activations[v]) {
      entry["dtype"] = "quint8";
      entry["scale"] = qparams->scale;
      entry["zero_point"] = qparams->zero_point;
      entry["threshold"] = qparams->threshold;
    }
    activations.push_back(std::move(entry));
  }

  json weights = json::array();
  json float_layers = json::array();
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    const Node& node = model.fp32.nodes[i];
    if (!model.plan.node_is_int8[i]) {
      float_layers.push_back({{"module_path", node.module_path},
                              {"op", OpKindName(node.kind)},
                              {"reason", model.plan.float_reason[i]}});
    }
    if (i >= model.weights.size() || !model.weights[i]) continue;
    const WeightQParams& qparams = *model.weights[i];
    json entry = {
        {"module_path", node.module_path},
        {"op", OpKindName(node.kind)},
        {"dtype", "qint8"},
        {"granularity", qparams.granularity == WeightGranularity::kPerChannel ? "per_channel" : "per_tensor"},
        {"axis", 0},
        {"quant_min", -127},
        {"quant_max", 127},
        {"scales", ToVector(qparams.scales)},
        {"fused_activation", ActivationName(node.activation)},
        {"folded_batch_norm", node.folded_batch_norm.empty() ? json(nullptr) : json(node.folded_batch_norm)},
    };
    if (model.bias_corrections[i].defined()) entry["bias_correction"] = ToVector(model.bias_corrections[i]);
    entry["codes_off_nearest"] = CodesOffNearest(node.weight, model.simulated.nodes[i].weight, qparams);
    weights.push_back(std::move(entry));
  }

  json se_blocks = json::array();
  for (const SeBlock& block : model.se_blocks) {
    se_blocks.push_back({{"module_path", block.path},
                         {"fc1", model.fp32.nodes[static_cast<size_t>(block.fc1)].module_path},
                         {"fc2", model.fp32.nodes[static_cast<size_t>(block.fc2)].module_path}});
  }

  json document = {
      {"format", "ptq-service quant_params v1"},
      {"activation_quantizer", config.activation_quantizer},
      {"activation_quantizer_used", model.activation_quantizer},
      {"weight_quantizer", config.weight_quantizer},
      {"bins", config.bins},
      {"upsample_bins", config.upsample_bins},
      {"hist_percent", config.hist_percent},
      {"percentile", config.percentile},
      {"fuse", config.fuse},
      {"skip_se_quant", config.skip_se_quant},
      {"bias_correction", config.bias_correction},
      {"bias_correction_batches", config.bias_correction_batches},
      {"weight_rounding", config.weight_rounding},
      {"adaround_iterations", config.adaround_iterations},
      {"equalize", config.Equalizes()},
      {"sensitivity", config.sensitivity},
      {"min_agreement", config.min_agreement >= 0 ? json(config.min_agreement) : json(nullptr)},
      {"max_top1_drop", config.max_top1_drop >= 0 ? json(config.max_top1_drop) : json(nullptr)},
      {"holdout_batches", config.HoldsImagesOut() ? json(config.holdout_batches) : json(nullptr)},
      {"activations", std::move(activations)},
      {"weights", std::move(weights)},
      {"float_layers", std::move(float_layers)},
      {"se_blocks", std::move(se_blocks)},
      // Weight scales and biases of int8 kernel layers are nudged so that onednn, qnnpack and
      // ONNX Runtime compute the same integers; channels where no nudge was found may differ
      // by one step in rare ties.
      {"int8_kernel_alignment",
       {{"kernel_layers", std::count_if(model.int8_kernels.begin(), model.int8_kernels.end(),
                                        [](const auto& kernel) { return kernel.has_value(); })},
        {"unaligned_channels", model.unaligned_channels}}},
  };
  return document.dump(2);
}

}  // namespace ptq::core
