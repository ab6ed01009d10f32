#include "quant/quant_plan.h"

#include <limits>
#include <set>

#include "absl/strings/str_cat.h"

namespace ptq::core {
namespace {

enum class OpClass { kOwnObserver, kFixedUnitInterval, kSameAsInput, kFloatOnly };

OpClass ClassOf(const Node& node) {
  switch (node.kind) {
    case OpKind::kConv2d:
    case OpKind::kLinear:
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kCat:
    case OpKind::kHardswish:
      return OpClass::kOwnObserver;
    case OpKind::kHardsigmoid:
    case OpKind::kSigmoid:
      return OpClass::kFixedUnitInterval;
    case OpKind::kBatchNorm:
      return OpClass::kFloatOnly;
    default:
      return OpClass::kSameAsInput;
  }
}

// Ops whose output values lie within their input's range (pooling, reshapes).
bool KeepsInputRange(const Node& node) {
  switch (node.kind) {
    case OpKind::kMaxPool2d:
    case OpKind::kAvgPool2d:
    case OpKind::kAdaptiveAvgPool2d:
    case OpKind::kFlatten:
    case OpKind::kReshape:
    case OpKind::kIdentity:
    case OpKind::kMean:
      return true;
    default:
      return false;
  }
}

// Whether the op's output is >= 0 whatever its input (or when its input is).
bool ProducesNonNegative(const Node& node, const std::vector<bool>& non_negative) {
  if (KeepsInputRange(node)) return non_negative[static_cast<size_t>(node.inputs[0])];
  switch (node.kind) {
    case OpKind::kConv2d:
    case OpKind::kLinear:
      return node.activation != FusedActivation::kNone;
    case OpKind::kRelu:
    case OpKind::kHardsigmoid:
    case OpKind::kSigmoid:
      return true;
    case OpKind::kHardtanh:
      return node.min_value >= 0;
    case OpKind::kPad:
      return non_negative[static_cast<size_t>(node.inputs[0])] && node.pad_value >= 0;
    default:
      return false;
  }
}

// The largest value the op can output: a ReLU6's 6, a hardtanh's max; infinity otherwise.
double UpperBoundOf(const Node& node) {
  if (IsWeightedLayer(node) && node.activation == FusedActivation::kRelu6) return 6;
  if (node.kind == OpKind::kHardtanh) return node.max_value;
  return std::numeric_limits<double>::infinity();
}

// Whether the op's output is a hardswish's, >= -0.375 (or its input is and it keeps the range;
// zero padding stays inside it).
bool ProducesHardswishRange(const Node& node, const std::vector<bool>& hardswish_range) {
  if (node.kind == OpKind::kHardswish) return true;
  if (node.kind == OpKind::kPad) return hardswish_range[static_cast<size_t>(node.inputs[0])] && node.pad_value == 0;
  return KeepsInputRange(node) && hardswish_range[static_cast<size_t>(node.inputs[0])];
}

// The logits stay float: the last int8 conv/linear (and the reshapes or pooling after it)
// still computes with int8 weights on quantized inputs, but its output is not rounded to a
// uint8 grid, which would tie the top classes of a 1000-way classifier.
void KeepOutputInFloat(const Graph& graph, QuantPlan& plan) {
  const std::vector<int> producers = ProducersOf(graph);
  const std::vector<std::vector<int>> consumers = ConsumersOf(graph);
  std::vector<int> chain;
  int value = graph.output;
  while (producers[static_cast<size_t>(value)] >= 0) {
    const int index = producers[static_cast<size_t>(value)];
    const Node& node = graph.nodes[static_cast<size_t>(index)];
    chain.push_back(value);
    if (ClassOf(node) == OpClass::kSameAsInput && consumers[static_cast<size_t>(node.inputs[0])].size() == 1) {
      value = node.inputs[0];
      continue;
    }
    if (IsWeightedLayer(node) && plan.node_is_int8[static_cast<size_t>(index)]) {
      for (int link : chain) plan.points[static_cast<size_t>(link)].reset();
    }
    return;
  }
}

}  // namespace

std::vector<int> QuantPlan::ObservedValues() const {
  std::vector<int> values;
  for (size_t v = 0; v < points.size(); ++v) {
    if (points[v] && points[v]->source == PointSource::kObserved) values.push_back(static_cast<int>(v));
  }
  return values;
}

absl::StatusOr<QuantPlan> PlanQuantization(const Graph& graph, const std::vector<SeBlock>& se_blocks,
                                           const PlanOptions& options) {
  const size_t node_count = graph.nodes.size();
  QuantPlan plan;
  plan.node_is_int8.assign(node_count, true);
  plan.float_reason.assign(node_count, "");
  plan.points.assign(static_cast<size_t>(graph.num_values), std::nullopt);

  std::set<std::string> weighted_paths;
  for (const Node& node : graph.nodes) {
    if (IsWeightedLayer(node)) weighted_paths.insert(node.module_path);
  }
  const std::set<std::string> skipped(options.skip_layers.begin(), options.skip_layers.end());
  for (const std::string& name : skipped) {
    if (weighted_paths.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ptq.skip_layers: no conv or linear layer named '", name, "'"));
    }
  }
  const std::set<std::string> budget_float(options.budget_float_layers.begin(), options.budget_float_layers.end());
  std::set<int> se_layers;
  if (options.skip_se_quant) {
    for (const SeBlock& block : se_blocks) se_layers.insert({block.fc1, block.fc2});
  }

  std::vector<bool> non_negative(static_cast<size_t>(graph.num_values), false);
  std::vector<bool> hardswish_range(static_cast<size_t>(graph.num_values), false);
  // The narrowest uint8 grid that covers what the value can hold.
  auto scheme_of = [&](int value) {
    if (non_negative[static_cast<size_t>(value)]) return ActivationScheme::kUnsigned;
    if (hardswish_range[static_cast<size_t>(value)]) return ActivationScheme::kHardswishRange;
    return ActivationScheme::kSigned;
  };
  std::vector<bool> quantized(static_cast<size_t>(graph.num_values), false);
  const std::vector<int> producers = ProducersOf(graph);
  auto name_of = [&](int value) -> std::string {
    const int producer = producers[static_cast<size_t>(value)];
    return producer < 0 ? "input" : graph.nodes[static_cast<size_t>(producer)].module_path;
  };
  // A float value read by an int8 op gets its own point at the boundary.
  auto quantize_at_boundary = [&](int value) {
    if (quantized[static_cast<size_t>(value)]) return;
    const int producer = producers[static_cast<size_t>(value)];
    ActivationPoint point;
    point.name = name_of(value);
    if (producer >= 0 && ClassOf(graph.nodes[static_cast<size_t>(producer)]) == OpClass::kFixedUnitInterval) {
      point.source = PointSource::kFixedUnitInterval;
      point.scheme = ActivationScheme::kUnsigned;
    } else {
      point.scheme = scheme_of(value);
      if (producer >= 0) point.upper_bound = UpperBoundOf(graph.nodes[static_cast<size_t>(producer)]);
    }
    plan.points[static_cast<size_t>(value)] = point;
    quantized[static_cast<size_t>(value)] = true;
  };

  for (size_t i = 0; i < node_count; ++i) {
    const Node& node = graph.nodes[i];
    const OpClass op_class = ClassOf(node);
    non_negative[static_cast<size_t>(node.output)] = ProducesNonNegative(node, non_negative);
    hardswish_range[static_cast<size_t>(node.output)] = ProducesHardswishRange(node, hardswish_range);

    std::string reason;
    if (op_class == OpClass::kFloatOnly) {
      reason = "batch_norm not folded (fuse is off or the pair is not in fuse_list)";
    } else if (skipped.count(node.module_path) != 0 && IsWeightedLayer(node)) {
      reason = "listed in ptq.skip_layers";
    } else if (budget_float.count(node.module_path) != 0 && IsWeightedLayer(node)) {
      reason = "left in float to meet the accuracy budget (ptq.min_agreement / ptq.max_top1_drop)";
    } else if (se_layers.count(static_cast<int>(i)) != 0) {
      reason = "squeeze-excitation layer (ptq.skip_se_quant)";
    } else if ((op_class == OpClass::kSameAsInput || op_class == OpClass::kFixedUnitInterval) &&
               !quantized[static_cast<size_t>(node.inputs[0])] && node.inputs[0] != graph.input) {
      reason = "reads a float value";  // e.g. the activation between two float SE layers
    }
    if (!reason.empty()) {
      plan.node_is_int8[i] = false;
      plan.float_reason[i] = reason;
      continue;
    }

    for (int input : node.inputs) quantize_at_boundary(input);
    ActivationPoint point;
    point.name = node.module_path;
    if (op_class == OpClass::kOwnObserver) {
      point.scheme = scheme_of(node.output);
      point.upper_bound = UpperBoundOf(node);
    } else if (op_class == OpClass::kFixedUnitInterval) {
      point.source = PointSource::kFixedUnitInterval;
      point.scheme = ActivationScheme::kUnsigned;
    } else {
      const ActivationPoint& input_point = *plan.points[static_cast<size_t>(node.inputs[0])];
      point.source = PointSource::kSameAsInput;
      point.scheme = input_point.scheme;
      point.same_as = input_point.source == PointSource::kSameAsInput ? input_point.same_as
                                                                      : node.inputs[0];
    }
    plan.points[static_cast<size_t>(node.output)] = point;
    quantized[static_cast<size_t>(node.output)] = true;
  }
  KeepOutputInFloat(graph, plan);
  return plan;
}

}  // namespace ptq::core
