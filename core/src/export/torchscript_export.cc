#include "export/torchscript_export.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

// Names the generated source may use: `torch.*` for ATen ops and `quantized.*` for the
// quantized kernels (the default resolver knows only `torch`).
struct ExportResolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction&,
                                                         const torch::jit::SourceRange&) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return nullptr;
  }
};

// torch.quantize_per_tensor's arithmetic (x * f32(1 / scale), rounded half to even, plus the
// zero point, clamped to 0..255) in vectorized ops: ATen's own loop, without fbgemm, is scalar,
// and took 43% of the int8 time of MobileNetV1-0.25 at 224x224 (12.4 of 28.9 ms a batch of 32;
// 4.2 ms this way). 4-D values go channels-last first, the layout onednn's convolutions take
// (a quantized NCHW input was copied into it inside the first convolution). Bit-exact with
// torch.quantize_per_tensor (Int8ExportTest).
constexpr char kQuantizeMethod[] = R"(def quantize(self, x: Tensor, inverse_scale: float, scale: float, zero_point: int) -> Tensor:
    if x.dim() == 4:
        x = x.contiguous(memory_format=2)
    codes = (x * inverse_scale).round_().add_(zero_point).clamp_(0, 255).to(0)
    return torch._make_per_tensor_quantized_tensor(codes, scale, zero_point)
)";

// A float literal (TorchScript reads "256" as an int, which float parameters refuse).
std::string Number(double value) {
  std::string text = absl::StrFormat("%.17g", value);
  if (text.find_first_of(".eni") == std::string::npos) text += ".0";
  return text;
}

std::string Ints(const std::vector<int64_t>& values) { return absl::StrCat("[", absl::StrJoin(values, ", "), "]"); }

// Writes forward() of a module computing the graph, one statement per op. In int8 mode a
// value may exist computed in float ("v3f"), quantized ("v3q") and read back ("v3d"), each
// produced on first use.
class ScriptWriter {
 public:
  ScriptWriter(const QuantizedModel& model, bool int8, torch::jit::Module& module,
               torch::jit::Module* prepacker)
      : model_(model), int8_(int8), module_(module), prepacker_(prepacker),
        graph_(int8 ? model.simulated : Fp32AsUploaded(model)),
        float_name_(static_cast<size_t>(graph_.num_values)),
        quant_name_(static_cast<size_t>(graph_.num_values)),
        dequant_name_(static_cast<size_t>(graph_.num_values)) {}

  std::string Write() {
    float_name_[static_cast<size_t>(graph_.input)] = "x";
    for (size_t i = 0; i < graph_.nodes.size(); ++i) WriteNode(static_cast<int>(i));
    const std::string output = Float(graph_.output);
    return absl::StrCat(int8_ ? kQuantizeMethod : "", "def forward(self, x: Tensor) -> Tensor:\n", body_,
                        "    return ", output, "\n");
  }

 private:
  const std::optional<ActivationQParams>& QParams(int value) const {
    return model_.activations[static_cast<size_t>(value)];
  }

  std::string Emit(const std::string& name, const std::string& expression) {
    absl::StrAppend(&body_, "    ", name, " = ", expression, "\n");
    return name;
  }

  // The value in float. A value with quantization parameters is read back through
  // dequantize, so float readers see the same rounded numbers the simulation gives them.
  std::string Float(int value) {
    if (!int8_ || !QParams(value)) return float_name_[static_cast<size_t>(value)];
    std::string& name = dequant_name_[static_cast<size_t>(value)];
    if (name.empty()) {
      name = Emit(absl::StrCat("v", value, "d"), absl::StrCat("torch.dequantize(", Quant(value), ")"));
    }
    return name;
  }

  // The value quantized with its point's parameters (quantizing a float value on first use).
  std::string Quant(int value) {
    std::string& name = quant_name_[static_cast<size_t>(value)];
    if (name.empty()) {
      const ActivationQParams& qparams = *QParams(value);
      const double inverse_scale = 1.0f / static_cast<float>(qparams.scale);  // as ATen's quantize_val has it
      name = Emit(absl::StrCat("v", value, "q"),
                  absl::StrCat("self.quantize(", float_name_[static_cast<size_t>(value)], ", ", Number(inverse_scale),
                               ", ", Number(qparams.scale), ", ", qparams.zero_point, ")"));
    }
    return name;
  }

  std::string TensorAttribute(const std::string& name, const at::Tensor& tensor) {
    if (!tensor.defined()) return "None";
    module_.register_attribute(name, c10::TensorType::get(), tensor.to(at::kCPU).contiguous());
    return absl::StrCat("self.", name);
  }

  std::string PackedAttribute(int index, const Node& node) {
    // The simulated graph's weights are already on the int8 grid: quantizing them is exact.
    const at::Tensor quantized_weight = QuantizeWeight(node.weight, *model_.weights[static_cast<size_t>(index)]);
    const at::Tensor bias = node.bias.defined() ? node.bias.to(at::kCPU).contiguous() : at::Tensor();
    c10::IValue packed;
    const c10::IValue optional_bias = bias.defined() ? c10::IValue(bias) : c10::IValue();
    if (node.kind == OpKind::kConv2d) {
      packed = prepacker_->run_method("prepack_conv", quantized_weight, optional_bias, node.stride, node.padding,
                                      node.dilation, node.groups);
    } else {
      packed = prepacker_->run_method("prepack_linear", quantized_weight, optional_bias);
    }
    const std::string name = absl::StrCat("packed_", index);
    module_.register_attribute(name, packed.type(), packed);
    return absl::StrCat("self.", name);
  }

  static std::string WithActivation(const std::string& expression, FusedActivation activation) {
    switch (activation) {
      case FusedActivation::kNone: return expression;
      case FusedActivation::kRelu: return absl::StrCat("torch.relu(", expression, ")");
      case FusedActivation::kRelu6: return absl::StrCat("torch.hardtanh(", expression, ", 0.0, 6.0)");
    }
    return expression;
  }

  // The op on tensors named `in` (float or quantized alike for shape and pooling ops).
  std::string Expression(int index, const Node& node, const std::vector<std::string>& in) {
    const std::string& x = in[0];
    switch (node.kind) {
      case OpKind::kConv2d:
        return WithActivation(
            absl::StrCat("torch.conv2d(", x, ", ", TensorAttribute(absl::StrCat("weight_", index), node.weight), ", ",
                         TensorAttribute(absl::StrCat("bias_", index), node.bias), ", ", Ints(node.stride), ", ",
                         Ints(node.padding), ", ", Ints(node.dilation), ", ", node.groups, ")"),
            node.activation);
      case OpKind::kLinear:
        return WithActivation(absl::StrCat("torch.linear(", x, ", ",
                                           TensorAttribute(absl::StrCat("weight_", index), node.weight), ", ",
                                           TensorAttribute(absl::StrCat("bias_", index), node.bias), ")"),
                              node.activation);
      case OpKind::kBatchNorm:
        return absl::StrCat("torch.batch_norm(", x, ", ", TensorAttribute(absl::StrCat("bn_weight_", index), node.weight),
                            ", ", TensorAttribute(absl::StrCat("bn_bias_", index), node.bias), ", ",
                            TensorAttribute(absl::StrCat("bn_mean_", index), node.running_mean), ", ",
                            TensorAttribute(absl::StrCat("bn_var_", index), node.running_var), ", False, 0.0, ",
                            Number(node.eps), ", False)");
      case OpKind::kRelu: return absl::StrCat("torch.relu(", x, ")");
      case OpKind::kHardtanh:
        return absl::StrCat("torch.hardtanh(", x, ", ", Number(node.min_value), ", ", Number(node.max_value), ")");
      case OpKind::kHardswish: return absl::StrCat("torch.hardswish(", x, ")");
      case OpKind::kHardsigmoid: return absl::StrCat("torch.hardsigmoid(", x, ")");
      case OpKind::kSigmoid: return absl::StrCat("torch.sigmoid(", x, ")");
      case OpKind::kAdd:
        return absl::StrCat("torch.add(", x, ", ", node.scalar_operand ? Number(*node.scalar_operand) : in[1],
                            ", alpha=", Number(node.alpha), ")");
      case OpKind::kMul:
        return absl::StrCat("torch.mul(", x, ", ", node.scalar_operand ? Number(*node.scalar_operand) : in[1], ")");
      case OpKind::kAvgPool2d:
        return absl::StrCat("torch.avg_pool2d(", x, ", ", Ints(node.pool.kernel), ", ", Ints(node.pool.stride), ", ",
                            Ints(node.pool.padding), ", ", node.pool.ceil_mode ? "True" : "False", ", ",
                            node.pool.count_include_pad ? "True" : "False", ", ",
                            node.pool.divisor_override ? absl::StrCat(*node.pool.divisor_override) : "None", ")");
      case OpKind::kMaxPool2d:
        return absl::StrCat("torch.max_pool2d(", x, ", ", Ints(node.pool.kernel), ", ", Ints(node.pool.stride), ", ",
                            Ints(node.pool.padding), ", ", Ints(node.pool.dilation), ", ",
                            node.pool.ceil_mode ? "True" : "False", ")");
      case OpKind::kAdaptiveAvgPool2d:
        return absl::StrCat("torch.adaptive_avg_pool2d(", x, ", ", Ints(node.pool.output_size), ")");
      case OpKind::kFlatten: return absl::StrCat("torch.flatten(", x, ", ", node.dims[0], ", ", node.dims[1], ")");
      case OpKind::kReshape: {
        std::vector<std::string> shape;
        for (size_t i = 0; i < node.dims.size(); ++i) {
          shape.push_back(node.shape_from_input[i] ? absl::StrCat(x, ".size(", node.dims[i], ")")
                                                   : absl::StrCat(node.dims[i]));
        }
        return absl::StrCat("torch.reshape(", x, ", [", absl::StrJoin(shape, ", "), "])");
      }
      case OpKind::kCat: return absl::StrCat("torch.cat([", absl::StrJoin(in, ", "), "], ", node.dims[0], ")");
      case OpKind::kPad:
        return absl::StrCat("torch.constant_pad_nd(", x, ", ", Ints(node.dims), ", ", Number(node.pad_value), ")");
      case OpKind::kMean:
        return absl::StrCat("torch.mean(", x, ", ", Ints(node.dims), ", ", node.keepdim ? "True" : "False", ")");
      case OpKind::kIdentity: return x;
    }
    return x;
  }

  // An int8 op with a quantized kernel: the kernel's call, or nullopt to compute in float.
  std::optional<std::string> QuantizedKernel(int index, const Node& node, const ActivationQParams& out) {
    const std::string scale = Number(out.scale);
    const std::string zero_point = absl::StrCat(out.zero_point);
    switch (node.kind) {
      case OpKind::kConv2d:
      case OpKind::kLinear: {
        // ReLU6 fuses as ReLU: the output's non-negative uint8 grid tops out at its threshold,
        // which is at most 6 for a ReLU6 output, so the upper clamp is the saturation.
        const bool relu = node.activation != FusedActivation::kNone;
        const std::string op = absl::StrCat(node.kind == OpKind::kConv2d ? "quantized.conv2d" : "quantized.linear",
                                            relu ? "_relu" : "");
        return absl::StrCat(op, "(", Quant(node.inputs[0]), ", ", PackedAttribute(index, node), ", ", scale, ", ",
                            zero_point, ")");
      }
      case OpKind::kAdd:
        if (node.scalar_operand || node.alpha != 1.0) return std::nullopt;
        return absl::StrCat("quantized.add(", Quant(node.inputs[0]), ", ", Quant(node.inputs[1]), ", ", scale, ", ",
                            zero_point, ")");
      case OpKind::kMul:
        if (node.scalar_operand) return std::nullopt;
        return absl::StrCat("quantized.mul(", Quant(node.inputs[0]), ", ", Quant(node.inputs[1]), ", ", scale, ", ",
                            zero_point, ")");
      case OpKind::kCat: {
        std::vector<std::string> parts;
        for (int input : node.inputs) parts.push_back(Quant(input));
        return absl::StrCat("quantized.cat([", absl::StrJoin(parts, ", "), "], ", node.dims[0], ", ", scale, ", ",
                            zero_point, ")");
      }
      case OpKind::kHardswish:
        return absl::StrCat("quantized.hardswish(", Quant(node.inputs[0]), ", ", scale, ", ", zero_point, ")");
      case OpKind::kBatchNorm:
        return std::nullopt;
      case OpKind::kPad: {
        // ATen's constant_pad_nd on a quantized tensor takes a slow generic path (3/4 of
        // MobileNetV1's int8 time); padding the uint8 codes with the pad value's code and
        // re-wrapping them is a plain byte copy.
        const int64_t code = std::clamp<int64_t>(
            static_cast<int64_t>(std::nearbyint(node.pad_value / out.scale)) + out.zero_point, 0, 255);
        return absl::StrCat("torch._make_per_tensor_quantized_tensor(torch.constant_pad_nd(torch.int_repr(",
                            Quant(node.inputs[0]), "), ", Ints(node.dims), ", ", code, "), ", scale, ", ", zero_point,
                            ")");
      }
      default: {
        // Pooling, reshapes, clamps and (hard)sigmoid run on quantized tensors with the
        // parameters the plan expects (shared with the input, or fixed at 1/256).
        std::vector<std::string> in;
        for (int input : node.inputs) in.push_back(Quant(input));
        return Expression(index, node, in);
      }
    }
  }

  void WriteNode(int index) {
    const Node& node = graph_.nodes[static_cast<size_t>(index)];
    const int out = node.output;
    const bool int8_node = int8_ && model_.plan.node_is_int8[static_cast<size_t>(index)];
    if (int8_node && QParams(out)) {
      if (std::optional<std::string> kernel = QuantizedKernel(index, node, *QParams(out))) {
        quant_name_[static_cast<size_t>(out)] = Emit(absl::StrCat("v", out, "q"), *kernel);
        return;
      }
    }
    std::vector<std::string> in;
    for (int input : node.inputs) in.push_back(Float(input));
    float_name_[static_cast<size_t>(out)] = Emit(absl::StrCat("v", out, "f"), Expression(index, node, in));
    // An int8 op without a kernel of its own computes in float; its output is quantized when
    // first read, as simulated.
  }

  const QuantizedModel& model_;
  const bool int8_;
  torch::jit::Module& module_;
  torch::jit::Module* prepacker_;
  const Graph& graph_;
  std::vector<std::string> float_name_;    // computed in float
  std::vector<std::string> quant_name_;    // quint8
  std::vector<std::string> dequant_name_;  // quint8 read back as float
  std::string body_;
};

}  // namespace

absl::StatusOr<torch::jit::Module> BuildInt8Module(const QuantizedModel& model) {
  if (!model.calibrated) return absl::FailedPreconditionError("int8 export needs a calibrated model");
  return GuardTorch<torch::jit::Module>("int8 TorchScript export", [&] {
    torch::jit::Module prepacker("Prepacker");
    prepacker.define(R"(
def prepack_conv(self, w: Tensor, b: Optional[Tensor], stride: List[int], padding: List[int], dilation: List[int], groups: int):
    return quantized.conv2d_prepack(w, b, stride, padding, dilation, groups)
def prepack_linear(self, w: Tensor, b: Optional[Tensor]):
    return quantized.linear_prepack(w, b)
)",
                     std::make_shared<ExportResolver>());
    torch::jit::Module module("PtqInt8Model");
    module.define(ScriptWriter(model, /*int8=*/true, module, &prepacker).Write(), std::make_shared<ExportResolver>());
    module.eval();
    return module;
  });
}

absl::StatusOr<torch::jit::Module> BuildFp32Module(const QuantizedModel& model) {
  return GuardTorch<torch::jit::Module>("fp32 TorchScript export", [&] {
    torch::jit::Module module("PtqFp32Model");
    module.define(ScriptWriter(model, /*int8=*/false, module, nullptr).Write(), std::make_shared<ExportResolver>());
    module.eval();
    return module;
  });
}

}  // namespace ptq::core
