#include "quant/calibration_state.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ptq::core {
namespace {

// Bumped when the dictionary's layout changes; a state of another version is refused.
constexpr int64_t kStateVersion = 1;

using Dict = c10::impl::GenericDict;  // string keys
using IndexedTensors = c10::Dict<int64_t, at::Tensor>;

// A copy on the CPU with storage of its own: a view (the SQNR images are the first 8 of the
// kept batches) would pickle its whole base storage.
at::Tensor OnCpu(const at::Tensor& tensor) {
  return tensor.defined() ? tensor.detach().to(at::kCPU).clone(at::MemoryFormat::Contiguous) : tensor;
}

const c10::IValue& Entry(const Dict& dict, const std::string& key) {
  auto found = dict.find(c10::IValue(key));
  if (found == dict.end()) throw c10::Error(absl::StrCat("no '", key, "' entry"), "");
  return found->value();
}

}  // namespace

std::string NodeSignature(const Node& node) {
  std::string signature = absl::StrCat(OpKindName(node.kind), " ", node.module_path);
  if (node.weight.defined()) absl::StrAppend(&signature, " [", absl::StrJoin(node.weight.sizes(), ", "), "]");
  return signature;
}

CalibrationState CaptureCalibrationState(const QuantizedModel& model) {
  CalibrationState state;
  for (const Node& node : model.fp32.nodes) state.node_signatures.push_back(NodeSignature(node));
  state.activation_quantizer = model.activation_quantizer;
  for (size_t value = 0; value < model.activations.size(); ++value) {
    if (model.activations[value]) state.activations[static_cast<int>(value)] = *model.activations[value];
  }
  for (size_t node = 0; node < model.bias_corrections.size(); ++node) {
    if (model.bias_corrections[node].defined()) {
      state.bias_corrections[static_cast<int>(node)] = OnCpu(model.bias_corrections[node]);
    }
  }
  state.equalized_values = model.equalized_values;
  if (model.before_equalization) {
    for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
      const Node& node = model.fp32.nodes[i];
      const Node& before = model.before_equalization->nodes[i];
      if (!node.weight.defined() || node.weight.is_same(before.weight)) continue;
      state.equalized_layers[static_cast<int>(i)] = {OnCpu(node.weight), OnCpu(node.bias)};
    }
  }
  state.sqnr_images = OnCpu(model.sqnr_images);
  return state;
}

std::string SerializeCalibrationState(const CalibrationState& state) {
  Dict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("version", kStateVersion);
  c10::List<std::string> signatures;
  for (const std::string& signature : state.node_signatures) signatures.push_back(signature);
  dict.insert("node_signatures", signatures);
  dict.insert("activation_quantizer", state.activation_quantizer);
  // Per activation: scheme, threshold, scale, zero point, as doubles.
  IndexedTensors activations;
  for (const auto& [value, qparams] : state.activations) {
    activations.insert(value, at::tensor({static_cast<double>(qparams.scheme), qparams.threshold, qparams.scale,
                                          static_cast<double>(qparams.zero_point)},
                                         at::kDouble));
  }
  dict.insert("activations", activations);
  IndexedTensors corrections;
  for (const auto& [node, correction] : state.bias_corrections) corrections.insert(node, correction);
  dict.insert("bias_corrections", corrections);
  dict.insert("equalized_values", c10::List<int64_t>(std::vector<int64_t>(state.equalized_values.begin(),
                                                                          state.equalized_values.end())));
  IndexedTensors weights, biases;
  for (const auto& [node, layer] : state.equalized_layers) {
    weights.insert(node, layer.first);
    if (layer.second.defined()) biases.insert(node, layer.second);
  }
  dict.insert("equalized_weights", weights);
  dict.insert("equalized_biases", biases);
  dict.insert("sqnr_images", state.sqnr_images.defined() ? state.sqnr_images : at::empty({0}));
  const std::vector<char> bytes = torch::jit::pickle_save(dict);
  return std::string(bytes.begin(), bytes.end());
}

absl::StatusOr<CalibrationState> ParseCalibrationState(const std::string& bytes) {
  try {
    const c10::IValue loaded = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
    const Dict dict = loaded.toGenericDict();
    if (const int64_t version = Entry(dict, "version").toInt(); version != kStateVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("it is version ", version, " of the format; this server reads version ", kStateVersion));
    }
    CalibrationState state;
    for (const c10::IValue& signature : Entry(dict, "node_signatures").toListRef()) {
      state.node_signatures.push_back(signature.toStringRef());
    }
    state.activation_quantizer = Entry(dict, "activation_quantizer").toStringRef();
    for (const auto& entry : c10::impl::toTypedDict<int64_t, at::Tensor>(Entry(dict, "activations").toGenericDict())) {
      const at::Tensor& fields = entry.value();
      if (fields.numel() != 4 || fields.scalar_type() != at::kDouble) throw c10::Error("a malformed activation", "");
      ActivationQParams qparams;
      qparams.scheme = static_cast<ActivationScheme>(static_cast<int>(fields[0].item<double>()));
      qparams.threshold = fields[1].item<double>();
      qparams.scale = fields[2].item<double>();
      qparams.zero_point = static_cast<int64_t>(fields[3].item<double>());
      state.activations[static_cast<int>(entry.key())] = qparams;
    }
    for (const auto& entry :
         c10::impl::toTypedDict<int64_t, at::Tensor>(Entry(dict, "bias_corrections").toGenericDict())) {
      state.bias_corrections[static_cast<int>(entry.key())] = entry.value();
    }
    for (int64_t value : Entry(dict, "equalized_values").toIntList()) {
      state.equalized_values.push_back(static_cast<int>(value));
    }
    const auto biases = c10::impl::toTypedDict<int64_t, at::Tensor>(Entry(dict, "equalized_biases").toGenericDict());
    for (const auto& entry :
         c10::impl::toTypedDict<int64_t, at::Tensor>(Entry(dict, "equalized_weights").toGenericDict())) {
      auto bias = biases.find(entry.key());
      state.equalized_layers[static_cast<int>(entry.key())] = {entry.value(),
                                                               bias == biases.end() ? at::Tensor() : bias->value()};
    }
    state.sqnr_images = Entry(dict, "sqnr_images").toTensor();
    return state;
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(absl::StrCat("it cannot be read: ", e.what_without_backtrace()));
  }
}

}  // namespace ptq::core
