#include "graph/executor.h"

namespace ptq::core {
namespace {

std::vector<int64_t> TargetShape(const Node& node, const at::Tensor& input) {
  std::vector<int64_t> shape = node.dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (node.shape_from_input[i]) shape[i] = input.size(shape[i]);
  }
  return shape;
}

}  // namespace

at::Tensor ApplyFusedActivation(at::Tensor x, FusedActivation activation) {
  switch (activation) {
    case FusedActivation::kNone: return x;
    case FusedActivation::kRelu: return at::relu_(x);
    case FusedActivation::kRelu6: return at::hardtanh_(x, 0.0, 6.0);
  }
  return x;
}

at::Tensor RunNode(const Node& node, const std::vector<at::Tensor>& in) {
  const at::Tensor& x = in[0];
  switch (node.kind) {
    case OpKind::kConv2d:
      return ApplyFusedActivation(
          at::conv2d(x, node.weight, node.bias, node.stride, node.padding, node.dilation, node.groups),
          node.activation);
    case OpKind::kLinear:
      return ApplyFusedActivation(at::linear(x, node.weight, node.bias), node.activation);
    case OpKind::kBatchNorm:
      return at::batch_norm(x, node.weight, node.bias, node.running_mean, node.running_var,
                            /*training=*/false, /*momentum=*/0.0, node.eps, /*cudnn_enabled=*/false);
    case OpKind::kRelu: return at::relu(x);
    case OpKind::kHardtanh: return at::hardtanh(x, node.min_value, node.max_value);
    case OpKind::kHardswish: return at::hardswish(x);
    case OpKind::kHardsigmoid: return at::hardsigmoid(x);
    case OpKind::kSigmoid: return at::sigmoid(x);
    case OpKind::kAdd:
      if (node.scalar_operand) return at::add(x, *node.scalar_operand * node.alpha);
      return at::add(x, in[1], node.alpha);
    case OpKind::kMul:
      if (node.scalar_operand) return at::mul(x, *node.scalar_operand);
      return at::mul(x, in[1]);
    case OpKind::kAvgPool2d:
      return at::avg_pool2d(x, node.pool.kernel, node.pool.stride, node.pool.padding,
                            node.pool.ceil_mode, node.pool.count_include_pad,
                            node.pool.divisor_override ? c10::optional<int64_t>(*node.pool.divisor_override)
                                                       : c10::nullopt);
    case OpKind::kMaxPool2d:
      return at::max_pool2d(x, node.pool.kernel, node.pool.stride, node.pool.padding,
                            node.pool.dilation, node.pool.ceil_mode);
    case OpKind::kAdaptiveAvgPool2d: return at::adaptive_avg_pool2d(x, node.pool.output_size);
    case OpKind::kFlatten: return at::flatten(x, node.dims[0], node.dims[1]);
    case OpKind::kReshape: return at::reshape(x, TargetShape(node, x));
    case OpKind::kCat: return at::cat(in, node.dims[0]);
    case OpKind::kPad: return at::constant_pad_nd(x, node.dims, node.pad_value);
    case OpKind::kMean: return at::mean(x, node.dims, node.keepdim);
    case OpKind::kIdentity: return x;
  }
  return x;
}

at::Tensor RunGraph(const Graph& graph, const at::Tensor& input, const ValueHook& hook, const NodeRunner& runner) {
  const std::vector<int> last_use = LastUses(graph);
  std::vector<at::Tensor> values(static_cast<size_t>(graph.num_values));
  values[static_cast<size_t>(graph.input)] = input;
  if (hook) hook(graph.input, values[static_cast<size_t>(graph.input)]);
  std::vector<at::Tensor> inputs;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    inputs.clear();
    for (int value : node.inputs) inputs.push_back(values[static_cast<size_t>(value)]);
    at::Tensor& output = values[static_cast<size_t>(node.output)];
    output = runner ? runner(i, inputs) : RunNode(node, inputs);
    if (hook) hook(node.output, output);
    for (int value : node.inputs) {
      if (last_use[static_cast<size_t>(value)] == static_cast<int>(i) && value != graph.output) {
        values[static_cast<size_t>(value)].reset();
      }
    }
  }
  return values[static_cast<size_t>(graph.output)];
}

}  // namespace ptq::core
