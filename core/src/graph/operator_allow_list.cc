#include "graph/operator_allow_list.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <set>
#include <unordered_set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

// Pure functions of tensors, shapes and constants (no file, process, network or log access,
// no state outside the model), as classifiers written in PyTorch use them, and the
// TorchScript glue (attributes, lists, tuples, branches, loops, raises) around them. Ops here
// that the engine cannot import are still refused later, by the import, by name.
const std::unordered_set<std::string>& AllowedOperators() {
  static const auto* allowed = new std::unordered_set<std::string>{
      // Layers.
      "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_convolution", "aten::convolution",
      "aten::linear", "aten::matmul", "aten::mm", "aten::bmm", "aten::addmm", "aten::batch_norm",
      "aten::layer_norm", "aten::group_norm", "aten::instance_norm",
      // Activations.
      "aten::relu", "aten::relu_", "aten::relu6", "aten::relu6_", "aten::hardtanh", "aten::hardtanh_",
      "aten::hardswish", "aten::hardswish_", "aten::hardsigmoid", "aten::hardsigmoid_", "aten::sigmoid",
      "aten::sigmoid_", "aten::silu", "aten::silu_", "aten::gelu", "aten::tanh", "aten::tanh_",
      "aten::leaky_relu", "aten::leaky_relu_", "aten::elu", "aten::prelu", "aten::softmax", "aten::log_softmax",
      "aten::clamp", "aten::clamp_", "aten::clamp_min", "aten::clamp_max",
      // Arithmetic and reductions.
      "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::mul", "aten::mul_", "aten::div", "aten::div_",
      "aten::neg", "aten::pow", "aten::sqrt", "aten::rsqrt", "aten::exp", "aten::log", "aten::abs", "aten::sin",
      "aten::cos", "aten::floor", "aten::ceil", "aten::round", "aten::reciprocal", "aten::floordiv",
      "aten::remainder", "aten::sum", "aten::mean", "aten::max", "aten::min", "aten::amax", "aten::amin",
      "aten::argmax",
      // Pooling, shapes, copies.
      "aten::adaptive_avg_pool2d", "aten::adaptive_max_pool2d", "aten::avg_pool2d", "aten::max_pool2d",
      "aten::flatten", "aten::view", "aten::reshape", "aten::squeeze", "aten::unsqueeze", "aten::transpose",
      "aten::permute", "aten::t", "aten::contiguous", "aten::detach", "aten::clone", "aten::to", "aten::type_as",
      "aten::cat", "aten::stack", "aten::chunk", "aten::split", "aten::narrow", "aten::slice", "aten::select",
      "aten::expand", "aten::expand_as", "aten::repeat", "aten::pad", "aten::constant_pad_nd",
      "aten::channel_shuffle", "aten::pixel_shuffle", "aten::upsample_nearest2d", "aten::upsample_bilinear2d",
      "aten::zeros", "aten::zeros_like", "aten::ones", "aten::ones_like", "aten::full",
      "aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::feature_dropout_",
      // Scalars, sizes and lists.
      "aten::size", "aten::dim", "aten::numel", "aten::len", "aten::__getitem__", "aten::append", "aten::eq",
      "aten::ne", "aten::gt", "aten::lt", "aten::ge", "aten::le", "aten::__not__", "aten::__and__",
      "aten::__or__", "aten::__is__", "aten::__isnot__", "aten::Bool", "aten::Int", "aten::Float",
      "aten::ScalarImplicit", "aten::format", "aten::__range_length", "aten::__derive_index",
      // TorchScript glue.
      "prim::Constant", "prim::ListConstruct", "prim::ListUnpack", "prim::TupleConstruct", "prim::TupleUnpack",
      "prim::TupleIndex", "prim::GetAttr", "prim::If", "prim::Loop", "prim::RaiseException",
      "prim::Uninitialized", "prim::unchecked_cast", "prim::isinstance", "prim::NumToTensor", "prim::dtype",
      "prim::device", "prim::min", "prim::max"};
  return *allowed;
}

void CollectRefused(const torch::jit::Block& block, std::set<std::string>* refused) {
  for (const torch::jit::Node* node : block.nodes()) {
    const std::string kind = node->kind().toQualString();
    if (AllowedOperators().count(kind) == 0) refused->insert(kind);
    for (const torch::jit::Block* nested : node->blocks()) CollectRefused(*nested, refused);
  }
}

}  // namespace

absl::Status CheckNoCodeRunsOnLoad(const std::string& path, const std::string& name) {
  try {
    caffe2::serialize::PyTorchStreamReader archive(path);
    for (const std::string& record : archive.getAllRecords()) {
      if (!absl::StartsWith(record, "code/") || !absl::EndsWith(record, ".py")) continue;
      const auto [data, size] = archive.getRecord(record);
      const absl::string_view code(static_cast<const char*>(data.get()), size);
      if (absl::StrContains(code, "def __setstate__(")) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model file '", name, "' defines __setstate__ (in ", record,
            "), code LibTorch would run while loading it; save the model without custom state methods"));
      }
    }
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("model file '", name, "' is not a TorchScript file LibTorch can load: ",
                                                   FirstLine(e.what_without_backtrace())));
  }
}

absl::Status CheckOperatorsAllowed(const torch::jit::Module& module, const std::string& name) {
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  std::set<std::string> refused;
  CollectRefused(*graph->block(), &refused);
  if (refused.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "model file '", name, "' calls ", absl::StrJoin(refused, ", "),
      ", which ptq-service does not run: an uploaded model may use pure tensor operations only (no file, "
      "log or custom operators)"));
}

}  // namespace ptq::core
