#include "graph/torchscript_import.h"

#include <torch/csrc/jit/ir/scope.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/remove_mutation.h>
#include <torch/script.h>

#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/operator_allow_list.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;
namespace aten = c10::aten;

// Module path of an inlined node: the chain of submodule instance names in its call stack.
// "SELF" marks a method calling another method of the same module and adds nothing.
std::string ModulePath(const Node* node) {
  std::vector<std::string> names;
  if (auto callstack = node->callstack()) {
    for (const auto& entry : (*callstack)->vec()) {
      const auto& module = std::get<torch::jit::kModuleInstanceInfo>(entry);
      if (module && module->instance_name() != "SELF") names.push_back(module->instance_name());
    }
  }
  return absl::StrJoin(names, ".");
}

std::string SourceLine(const Node* node) {
  if (auto location = node->sourceRange().file_line_col()) {
    return absl::StrCat(std::get<0>(*location), ":", std::get<1>(*location));
  }
  return "";
}

// Whether `value` is computed from constants and tensor shapes only (dim(), size(), len()),
// never from a tensor's contents: then a check on it holds for every input of one shape.
// Walks the values it is computed from, each once; shape checks are a few ops, so a condition
// built from more than kMaxValues is treated as reading contents (and refused).
bool DependsOnlyOnShapes(const Value* condition) {
  constexpr size_t kMaxValues = 256;
  std::vector<const Value*> pending = {condition};
  std::unordered_set<const Value*> seen = {condition};
  while (!pending.empty()) {
    const Value* value = pending.back();
    pending.pop_back();
    const c10::Symbol kind = value->node()->kind();
    if (kind == prim::Constant || kind == aten::dim || kind == aten::size || kind == aten::len) continue;
    if (kind == prim::Param || value->type()->kind() == c10::TypeKind::TensorType) return false;
    for (const Value* input : value->node()->inputs()) {
      if (seen.insert(input).second) pending.push_back(input);
    }
    if (seen.size() > kMaxValues) return false;
  }
  return true;
}

// A shape assertion: an If with no outputs that can only raise, on a condition computed from
// shapes. A raise that depends on tensor values stays, and the import refuses it: the int8
// graph would not do what the model does.
bool IsAssertion(const Node* node) {
  if (node->kind() != prim::If || node->outputs().size() != 0) return false;
  if (!DependsOnlyOnShapes(node->input())) return false;
  for (const torch::jit::Block* block : node->blocks()) {
    for (const Node* inner : block->nodes()) {
      if (inner->kind() == prim::RaiseException) return true;
    }
  }
  return false;
}

void RemoveAssertions(const std::shared_ptr<torch::jit::Graph>& graph) {
  std::vector<Node*> assertions;
  for (Node* node : graph->nodes()) {
    if (IsAssertion(node)) assertions.push_back(node);
  }
  for (Node* node : assertions) node->destroy();
}

class ImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Walks the frozen TorchScript graph and builds our IR node by node.
class GraphBuilder {
 public:
  Graph Build(const torch::jit::Graph& source) {
    const auto inputs = source.inputs();
    // inputs[0] is the frozen module itself.
    if (inputs.size() != 2) {
      throw ImportError(absl::StrCat("forward() must take exactly one tensor input, it takes ",
                                     inputs.size() - 1));
    }
    graph_.input = 0;
    graph_.num_values = 1;
    ids_[inputs[1]] = 0;
    // Control flow is named before any op it reads is refused for being unsupported.
    for (const Node* node : source.nodes()) {
      const c10::Symbol kind = node->kind();
      if (kind == prim::If || kind == prim::Loop || kind == prim::RaiseException) {
        current_ = node;
        Fail("control flow (a branch, a loop, or a raise that depends on tensor values) is not supported: "
             "the quantized graph would not do what the model does");
      }
    }
    for (const Node* node : source.nodes()) Import(node);
    const Value* output = source.outputs()[0];
    if (source.outputs().size() != 1 || ids_.count(output) == 0) {
      throw ImportError("forward() must return exactly one tensor");
    }
    graph_.output = ids_.at(output);
    return std::move(graph_);
  }

 private:
  void Import(const Node* node) {
    const c10::Symbol kind = node->kind();
    // Constants, lists and sizes are read where they are used.
    if (kind == prim::Constant || kind == prim::ListConstruct || kind == aten::size) return;

    current_ = node;
    ptq::core::Node out;
    out.module_path = ModulePath(node);
    out.source = SourceLine(node);
    const auto in = node->inputs();
    if (kind == aten::conv2d) {
      out.kind = OpKind::kConv2d;
      SetConvolution(out, in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
    } else if (kind == aten::_convolution) {
      if (ConstBool(in[6])) Fail("transposed convolution is not supported");
      out.kind = OpKind::kConv2d;
      SetConvolution(out, in[0], in[1], in[2], in[3], in[4], in[5], in[8]);
    } else if (kind == aten::linear) {
      out.kind = OpKind::kLinear;
      out.inputs = {TensorInput(in[0])};
      out.weight = ConstTensor(in[1]);
      out.bias = ConstTensorOrUndefined(in[2]);
    } else if (kind == aten::batch_norm) {
      if (ConstBool(in[5])) Fail("batch_norm in training mode");
      out.kind = OpKind::kBatchNorm;
      out.inputs = {TensorInput(in[0])};
      out.running_mean = ConstTensor(in[3]);
      out.running_var = ConstTensor(in[4]);
      out.weight = ConstTensorOrUndefined(in[1]);
      out.bias = ConstTensorOrUndefined(in[2]);
      if (!out.weight.defined()) out.weight = at::ones_like(out.running_mean);
      if (!out.bias.defined()) out.bias = at::zeros_like(out.running_mean);
      out.eps = ConstDouble(in[7]);
    } else if (kind == aten::relu) {
      Unary(out, OpKind::kRelu, in[0]);
    } else if (kind == aten::relu6) {
      Unary(out, OpKind::kHardtanh, in[0]);
      out.min_value = 0;
      out.max_value = 6;
    } else if (kind == aten::hardtanh) {
      Unary(out, OpKind::kHardtanh, in[0]);
      out.min_value = ConstDouble(in[1]);
      out.max_value = ConstDouble(in[2]);
    } else if (kind == aten::hardswish) {
      Unary(out, OpKind::kHardswish, in[0]);
    } else if (kind == aten::hardsigmoid) {
      Unary(out, OpKind::kHardsigmoid, in[0]);
    } else if (kind == aten::sigmoid) {
      Unary(out, OpKind::kSigmoid, in[0]);
    } else if (kind == aten::add || kind == aten::mul) {
      out.kind = kind == aten::add ? OpKind::kAdd : OpKind::kMul;
      out.inputs = {TensorInput(in[0])};
      if (in[1]->type()->isSubtypeOf(*c10::TensorType::get())) {
        out.inputs.push_back(TensorInput(in[1]));
      } else {
        out.scalar_operand = ConstDouble(in[1]);
      }
      if (kind == aten::add) out.alpha = ConstDouble(in[2]);
    } else if (kind == aten::avg_pool2d) {
      Unary(out, OpKind::kAvgPool2d, in[0]);
      out.pool.kernel = ConstInts(in[1]);
      out.pool.stride = ConstInts(in[2]);
      out.pool.padding = ConstInts(in[3]);
      out.pool.ceil_mode = ConstBool(in[4]);
      out.pool.count_include_pad = ConstBool(in[5]);
      const c10::IValue divisor = Constant(in[6]);
      if (!divisor.isNone()) out.pool.divisor_override = divisor.toInt();
    } else if (kind == aten::max_pool2d) {
      Unary(out, OpKind::kMaxPool2d, in[0]);
      out.pool.kernel = ConstInts(in[1]);
      out.pool.stride = ConstInts(in[2]);
      out.pool.padding = ConstInts(in[3]);
      out.pool.dilation = ConstInts(in[4]);
      out.pool.ceil_mode = ConstBool(in[5]);
    } else if (kind == aten::adaptive_avg_pool2d) {
      Unary(out, OpKind::kAdaptiveAvgPool2d, in[0]);
      out.pool.output_size = ConstInts(in[1]);
    } else if (kind == aten::flatten) {
      Unary(out, OpKind::kFlatten, in[0]);
      out.dims = {ConstInt(in[1]), ConstInt(in[2])};
    } else if (kind == aten::reshape || kind == aten::view) {
      Unary(out, OpKind::kReshape, in[0]);
      SetShape(out, in[0], in[1]);
    } else if (kind == aten::cat) {
      out.kind = OpKind::kCat;
      const Node* list = in[0]->node();
      if (list->kind() != prim::ListConstruct) Fail("cat of a tensor list that is not built in place");
      for (const Value* item : list->inputs()) out.inputs.push_back(TensorInput(item));
      out.dims = {ConstInt(in[1])};
    } else if (kind == aten::pad || kind == aten::constant_pad_nd) {
      Unary(out, OpKind::kPad, in[0]);
      out.dims = ConstInts(in[1]);
      if (kind == aten::pad) {
        if (Constant(in[2]).toStringRef() != "constant") Fail("only constant padding is supported");
        const c10::IValue value = Constant(in[3]);
        out.pad_value = value.isNone() ? 0.0 : value.toDouble();
      } else {
        out.pad_value = ConstDouble(in[2]);
      }
    } else if (kind == aten::mean) {
      Unary(out, OpKind::kMean, in[0]);
      out.dims = ConstInts(in[1]);
      out.keepdim = ConstBool(in[2]);
    } else if (kind == aten::dropout || kind == aten::feature_dropout) {
      if (ConstBool(in[2])) Fail("dropout in training mode");
      Unary(out, OpKind::kIdentity, in[0]);
    } else if (kind == aten::contiguous || kind == aten::detach) {
      Unary(out, OpKind::kIdentity, in[0]);
    } else {
      Fail(absl::StrCat("unsupported op '", kind.toQualString(), "'"));
    }
    if (node->outputs().size() != 1) Fail("op has more than one output");
    out.output = graph_.num_values++;
    ids_[node->output()] = out.output;
    graph_.nodes.push_back(std::move(out));
  }

  void Unary(ptq::core::Node& out, OpKind kind, const Value* input) {
    out.kind = kind;
    out.inputs = {TensorInput(input)};
  }

  void SetConvolution(ptq::core::Node& out, const Value* input, const Value* weight,
                      const Value* bias, const Value* stride, const Value* padding,
                      const Value* dilation, const Value* groups) {
    out.inputs = {TensorInput(input)};
    out.weight = ConstTensor(weight);
    out.bias = ConstTensorOrUndefined(bias);
    if (out.weight.dim() != 4) {
      Fail(absl::StrCat("weight has ", out.weight.dim(), " dims, expected 4"));
    }
    if (!padding->type()->isSubtypeOf(*c10::ListType::ofInts())) {
      Fail("string padding ('same'/'valid') is not supported");
    }
    out.stride = ConstInts(stride);
    out.padding = ConstInts(padding);
    out.dilation = ConstInts(dilation);
    out.groups = ConstInt(groups);
  }

  // Shape entries are constants or sizes of the reshaped tensor (x.view(x.size(0), -1)).
  void SetShape(ptq::core::Node& out, const Value* input, const Value* shape) {
    if (shape->node()->kind() != prim::ListConstruct) {
      out.dims = ConstInts(shape);
      out.shape_from_input.assign(out.dims.size(), false);
      return;
    }
    for (const Value* item : shape->node()->inputs()) {
      const Node* producer = item->node();
      if (producer->kind() == aten::size && producer->inputs()[0] == input) {
        out.dims.push_back(ConstInt(producer->inputs()[1]));
        out.shape_from_input.push_back(true);
      } else {
        out.dims.push_back(ConstInt(item));
        out.shape_from_input.push_back(false);
      }
    }
  }

  int TensorInput(const Value* value) {
    auto it = ids_.find(value);
    if (it == ids_.end()) {
      Fail(absl::StrCat("input '%", value->debugName(),
                        "' is not a tensor computed from the model input (constant tensor operands "
                        "are not supported)"));
    }
    return it->second;
  }

  c10::IValue Constant(const Value* value) {
    c10::optional<c10::IValue> constant = torch::jit::toIValue(value);
    if (!constant) {
      Fail(absl::StrCat("argument '%", value->debugName(), "' must be a constant"));
    }
    return *constant;
  }
  int64_t ConstInt(const Value* value) { return Constant(value).toInt(); }
  double ConstDouble(const Value* value) { return Constant(value).toScalar().toDouble(); }
  bool ConstBool(const Value* value) { return Constant(value).toBool(); }
  std::vector<int64_t> ConstInts(const Value* value) {
    const c10::IValue constant = Constant(value);
    if (constant.isInt()) return {constant.toInt()};
    return constant.toIntVector();
  }
  at::Tensor ConstTensor(const Value* value) {
    at::Tensor tensor = ConstTensorOrUndefined(value);
    if (!tensor.defined()) Fail(absl::StrCat("argument '%", value->debugName(), "' must be a tensor"));
    return tensor;
  }
  at::Tensor ConstTensorOrUndefined(const Value* value) {
    const c10::IValue constant = Constant(value);
    if (constant.isNone()) return at::Tensor();
    return constant.toTensor().detach().to(at::kFloat).contiguous();
  }

  [[noreturn]] void Fail(const std::string& what) {
    const std::string path = ModulePath(current_);
    std::string where = path.empty() ? " in the model's own forward()"
                                     : absl::StrCat(" in module '", path, "'");
    if (const std::string line = SourceLine(current_); !line.empty()) {
      absl::StrAppend(&where, " (", line, ")");
    }
    throw ImportError(absl::StrCat(current_->kind().toQualString(), ": ", what, where));
  }

  Graph graph_;
  std::unordered_map<const Value*, int> ids_;
  const Node* current_ = nullptr;
};

}  // namespace

absl::StatusOr<Graph> ImportTorchScript(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("model file '", path, "' does not exist"));
  }
  if (absl::Status inert = CheckNoCodeRunsOnLoad(path, path); !inert.ok()) return inert;
  try {
    torch::jit::Module module = torch::jit::load(path, torch::kCPU);
    module.eval();
    if (absl::Status allowed = CheckOperatorsAllowed(module, path); !allowed.ok()) return allowed;
    torch::jit::Module frozen = torch::jit::freeze(module, c10::nullopt, /*optimize_numerics=*/false);
    std::shared_ptr<torch::jit::Graph> graph = frozen.get_method("forward").graph()->copy();
    torch::jit::RemoveListMutation(graph);
    torch::jit::RemoveTensorMutation(graph);
    RemoveAssertions(graph);
    torch::jit::ConstantPropagation(graph);
    torch::jit::EliminateDeadCode(graph);
    return GraphBuilder().Build(*graph);
  } catch (const ImportError& e) {
    return absl::InvalidArgumentError(absl::StrCat("model '", path, "': ", e.what()));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", path, "': ", FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model '", path, "': ", FirstLine(e.what())));
  }
}

}  // namespace ptq::core
