#include "export/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "graph/executor.h"

namespace ptq::core {
namespace {

constexpr int kOpset = 14;  // HardSwish needs 14; per-axis QuantizeLinear needs 13

class ExportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds the ONNX graph op by op. In the QDQ variant every value with quantization parameters
// is followed by QuantizeLinear -> DequantizeLinear, and readers take the dequantized tensor.
class OnnxWriter {
 public:
  OnnxWriter(const QuantizedModel& model, OnnxVariant variant)
      : model_(model), qdq_(variant == OnnxVariant::kQdq), graph_(qdq_ ? model.simulated : Fp32AsUploaded(model)) {}

  onnx::ModelProto Build() {
    onnx::ModelProto proto;
    proto.set_ir_version(7);
    proto.set_producer_name("ptq-service");
    proto.add_opset_import()->set_version(kOpset);
    onnx_ = proto.mutable_graph();
    onnx_->set_name(qdq_ ? "ptq_int8_qdq" : "ptq_fp32");
    AddValueInfo(onnx_->add_input(), "input", true);
    Produced(graph_.input);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) WriteNode(static_cast<int>(i));
    AddNode("Identity", {Read(graph_.output)}, "output");
    AddValueInfo(onnx_->add_output(), "output", false);
    return proto;
  }

 private:
  static std::string Name(int value) { return value == 0 ? "input" : absl::StrCat("v", value); }

  void AddValueInfo(onnx::ValueInfoProto* info, const std::string& name, bool is_input) {
    info->set_name(name);
    auto* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(onnx::TensorProto::FLOAT);
    // Batch size is free; the other dims are the calibration input's and, for the output,
    // what the fp32 graph makes of one such image.
    const std::vector<int64_t> dims = is_input ? model_.input_shape : OutputShape();
    auto* shape = tensor->mutable_shape();
    for (size_t d = 0; d < dims.size(); ++d) {
      if (d == 0) {
        shape->add_dim()->set_dim_param("N");
      } else {
        shape->add_dim()->set_dim_value(dims[d]);
      }
    }
  }

  std::vector<int64_t> OutputShape() const {
    std::vector<int64_t> one_image = model_.input_shape;
    one_image[0] = 1;
    const at::Device device = model_.fp32.nodes.empty() || !model_.fp32.nodes[0].weight.defined()
                                  ? at::Device(at::kCPU)
                                  : model_.fp32.nodes[0].weight.device();
    return RunGraph(model_.fp32, at::zeros(one_image, at::TensorOptions().device(device))).sizes().vec();
  }

  onnx::NodeProto* AddNode(const std::string& op, const std::vector<std::string>& inputs, const std::string& output) {
    onnx::NodeProto* node = onnx_->add_node();
    node->set_op_type(op);
    node->set_name(absl::StrCat(op, "_", onnx_->node_size()));
    for (const std::string& input : inputs) node->add_input(input);
    node->add_output(output);
    return node;
  }

  static void IntsAttribute(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
    onnx::AttributeProto* attribute = node->add_attribute();
    attribute->set_name(name);
    attribute->set_type(onnx::AttributeProto::INTS);
    for (int64_t value : values) attribute->add_ints(value);
  }
  static void IntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
    onnx::AttributeProto* attribute = node->add_attribute();
    attribute->set_name(name);
    attribute->set_type(onnx::AttributeProto::INT);
    attribute->set_i(value);
  }
  static void FloatAttribute(onnx::NodeProto* node, const std::string& name, float value) {
    onnx::AttributeProto* attribute = node->add_attribute();
    attribute->set_name(name);
    attribute->set_type(onnx::AttributeProto::FLOAT);
    attribute->set_f(value);
  }

  std::string FloatInitializer(const std::string& name, const at::Tensor& tensor) {
    const at::Tensor data = tensor.to(at::kCPU, at::kFloat).contiguous();
    onnx::TensorProto* proto = onnx_->add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : data.sizes()) proto->add_dims(d);
    proto->set_raw_data(std::string(reinterpret_cast<const char*>(data.data_ptr<float>()), data.numel() * sizeof(float)));
    return name;
  }
  std::string ScalarInitializer(const std::string& name, float value) {
    onnx::TensorProto* proto = onnx_->add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::FLOAT);
    proto->add_float_data(value);
    return name;
  }
  std::string Int64Initializer(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* proto = onnx_->add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::INT64);
    proto->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t value : values) proto->add_int64_data(value);
    return name;
  }

  // After `value` is computed in float: its QuantizeLinear/DequantizeLinear pair (QDQ only).
  void Produced(int value) {
    const std::optional<ActivationQParams>& qparams = model_.activations[static_cast<size_t>(value)];
    if (!qdq_ || !qparams) return;
    const std::string name = Name(value);
    const std::string scale = ScalarInitializer(absl::StrCat(name, "_scale"), static_cast<float>(qparams->scale));
    onnx::TensorProto* zero_point = onnx_->add_initializer();
    zero_point->set_name(absl::StrCat(name, "_zero_point"));
    zero_point->set_data_type(onnx::TensorProto::UINT8);
    zero_point->add_int32_data(static_cast<int32_t>(qparams->zero_point));
    AddNode("QuantizeLinear", {name, scale, zero_point->name()}, absl::StrCat(name, "_q"));
    AddNode("DequantizeLinear", {absl::StrCat(name, "_q"), scale, zero_point->name()}, absl::StrCat(name, "_dq"));
  }

  std::string Read(int value) const {
    const bool quantized = qdq_ && model_.activations[static_cast<size_t>(value)].has_value();
    return quantized ? absl::StrCat(Name(value), "_dq") : Name(value);
  }

  // The weight as float: an int8 initializer and its DequantizeLinear for int8 layers in QDQ.
  std::string Weight(int index, const Node& node) {
    const std::string name = absl::StrCat("weight_", index);
    const std::optional<WeightQParams>& qparams = model_.weights.size() > static_cast<size_t>(index)
                                                      ? model_.weights[static_cast<size_t>(index)]
                                                      : std::nullopt;
    if (!qdq_ || !qparams || !model_.plan.node_is_int8[static_cast<size_t>(index)]) {
      return FloatInitializer(name, node.weight);
    }
    const bool per_channel = qparams->granularity == WeightGranularity::kPerChannel;
    const at::Tensor scales = qparams->scales.to(at::kCPU, at::kFloat).contiguous();
    const at::Tensor integers = QuantizeWeight(node.weight, *qparams).int_repr().contiguous();
    onnx::TensorProto* proto = onnx_->add_initializer();
    proto->set_name(absl::StrCat(name, "_q"));
    proto->set_data_type(onnx::TensorProto::INT8);
    for (int64_t d : integers.sizes()) proto->add_dims(d);
    proto->set_raw_data(std::string(reinterpret_cast<const char*>(integers.data_ptr<int8_t>()), integers.numel()));
    const std::string scale = per_channel ? FloatInitializer(absl::StrCat(name, "_scale"), scales)
                                          : ScalarInitializer(absl::StrCat(name, "_scale"), scales.item<float>());
    onnx::TensorProto* zero_points = onnx_->add_initializer();
    zero_points->set_name(absl::StrCat(name, "_zero_point"));
    zero_points->set_data_type(onnx::TensorProto::INT8);
    if (per_channel) zero_points->add_dims(scales.numel());
    for (int64_t c = 0; c < (per_channel ? scales.numel() : 1); ++c) zero_points->add_int32_data(0);
    onnx::NodeProto* dequantize = AddNode("DequantizeLinear", {proto->name(), scale, zero_points->name()}, name);
    if (per_channel) IntAttribute(dequantize, "axis", 0);
    return name;
  }

  std::string Activated(const std::string& input, FusedActivation activation, const std::string& output, int index) {
    switch (activation) {
      case FusedActivation::kNone: return input;
      case FusedActivation::kRelu: AddNode("Relu", {input}, output); return output;
      case FusedActivation::kRelu6:
        AddNode("Clip", {input, ScalarInitializer(absl::StrCat("clip_min_", index), 0.0f),
                         ScalarInitializer(absl::StrCat("clip_max_", index), 6.0f)},
                output);
        return output;
    }
    return input;
  }

  // AveragePool / MaxPool with the attributes they share.
  onnx::NodeProto* AddPool(const std::string& op, const Node& node, const std::string& input, const std::string& out) {
    onnx::NodeProto* pool = AddNode(op, {input}, out);
    IntsAttribute(pool, "kernel_shape", node.pool.kernel);
    IntsAttribute(pool, "strides", node.pool.stride.empty() ? node.pool.kernel : node.pool.stride);
    IntsAttribute(pool, "pads", {node.pool.padding[0], node.pool.padding[1], node.pool.padding[0], node.pool.padding[1]});
    IntAttribute(pool, "ceil_mode", node.pool.ceil_mode);
    return pool;
  }

  [[noreturn]] static void Unsupported(const Node& node, const std::string& why) {
    throw ExportError(absl::StrCat(Describe(node), ": ", why, " has no ONNX export here"));
  }

  void WriteNode(int index) {
    const Node& node = graph_.nodes[static_cast<size_t>(index)];
    const std::string out = Name(node.output);
    std::vector<std::string> in;
    for (int input : node.inputs) in.push_back(Read(input));
    switch (node.kind) {
      case OpKind::kConv2d: {
        const bool fused = node.activation != FusedActivation::kNone;
        std::vector<std::string> inputs = {in[0], Weight(index, node)};
        if (node.bias.defined()) inputs.push_back(FloatInitializer(absl::StrCat("bias_", index), node.bias));
        onnx::NodeProto* conv = AddNode("Conv", inputs, fused ? out + "_linear" : out);
        IntsAttribute(conv, "kernel_shape", {node.weight.size(2), node.weight.size(3)});
        IntsAttribute(conv, "strides", node.stride);
        IntsAttribute(conv, "pads", {node.padding[0], node.padding[1], node.padding[0], node.padding[1]});
        IntsAttribute(conv, "dilations", node.dilation);
        IntAttribute(conv, "group", node.groups);
        if (fused) Activated(out + "_linear", node.activation, out, index);
        break;
      }
      case OpKind::kLinear: {
        const bool fused = node.activation != FusedActivation::kNone;
        std::vector<std::string> inputs = {in[0], Weight(index, node)};
        if (node.bias.defined()) inputs.push_back(FloatInitializer(absl::StrCat("bias_", index), node.bias));
        onnx::NodeProto* gemm = AddNode("Gemm", inputs, fused ? out + "_linear" : out);
        IntAttribute(gemm, "transB", 1);
        if (fused) Activated(out + "_linear", node.activation, out, index);
        break;
      }
      case OpKind::kBatchNorm: {
        onnx::NodeProto* bn = AddNode("BatchNormalization",
                                      {in[0], FloatInitializer(absl::StrCat("bn_weight_", index), node.weight),
                                       FloatInitializer(absl::StrCat("bn_bias_", index), node.bias),
                                       FloatInitializer(absl::StrCat("bn_mean_", index), node.running_mean),
                                       FloatInitializer(absl::StrCat("bn_var_", index), node.running_var)},
                                      out);
        FloatAttribute(bn, "epsilon", static_cast<float>(node.eps));
        break;
      }
      case OpKind::kRelu: AddNode("Relu", in, out); break;
      case OpKind::kHardtanh:
        AddNode("Clip", {in[0], ScalarInitializer(absl::StrCat("clip_min_", index), static_cast<float>(node.min_value)),
                         ScalarInitializer(absl::StrCat("clip_max_", index), static_cast<float>(node.max_value))},
                out);
        break;
      case OpKind::kHardswish: AddNode("HardSwish", in, out); break;
      case OpKind::kHardsigmoid: {
        onnx::NodeProto* gate = AddNode("HardSigmoid", in, out);
        FloatAttribute(gate, "alpha", 1.0f / 6);  // PyTorch: relu6(x + 3) / 6
        FloatAttribute(gate, "beta", 0.5f);
        break;
      }
      case OpKind::kSigmoid: AddNode("Sigmoid", in, out); break;
      case OpKind::kAdd:
      case OpKind::kMul: {
        if (node.kind == OpKind::kAdd && node.alpha != 1.0) Unsupported(node, "add with alpha != 1");
        const std::string other = node.scalar_operand
                                      ? ScalarInitializer(absl::StrCat("operand_", index), static_cast<float>(*node.scalar_operand))
                                      : in[1];
        AddNode(node.kind == OpKind::kAdd ? "Add" : "Mul", {in[0], other}, out);
        break;
      }
      case OpKind::kAvgPool2d: {
        if (node.pool.divisor_override) Unsupported(node, "divisor_override");
        onnx::NodeProto* pool = AddPool("AveragePool", node, in[0], out);
        IntAttribute(pool, "count_include_pad", node.pool.count_include_pad);
        break;
      }
      case OpKind::kMaxPool2d:
        IntsAttribute(AddPool("MaxPool", node, in[0], out), "dilations", node.pool.dilation);
        break;
      case OpKind::kAdaptiveAvgPool2d:
        for (int64_t size : node.pool.output_size) {
          if (size != 1) Unsupported(node, "adaptive pooling to a size other than 1x1");
        }
        AddNode("GlobalAveragePool", in, out);
        break;
      case OpKind::kFlatten: {
        if (node.dims[1] != -1 && node.dims[1] != 3) Unsupported(node, "flatten that keeps trailing dims");
        IntAttribute(AddNode("Flatten", in, out), "axis", node.dims[0]);
        break;
      }
      case OpKind::kReshape: {
        std::vector<int64_t> shape = node.dims;
        for (size_t i = 0; i < shape.size(); ++i) {
          if (!node.shape_from_input[i]) continue;
          if (shape[i] != static_cast<int64_t>(i)) Unsupported(node, "reshape taking a size from another axis");
          shape[i] = 0;  // ONNX Reshape: 0 copies the input's size at that axis
        }
        AddNode("Reshape", {in[0], Int64Initializer(absl::StrCat("shape_", index), shape)}, out);
        break;
      }
      case OpKind::kCat: IntAttribute(AddNode("Concat", in, out), "axis", node.dims[0]); break;
      case OpKind::kPad: {
        // PyTorch lists (left, right) pairs from the last axis backwards; ONNX wants all begins
        // then all ends, from the first axis.
        const size_t rank = 4;
        std::vector<int64_t> pads(2 * rank, 0);
        for (size_t pair = 0; pair * 2 < node.dims.size(); ++pair) {
          const size_t axis = rank - 1 - pair;
          pads[axis] = node.dims[2 * pair];
          pads[rank + axis] = node.dims[2 * pair + 1];
        }
        AddNode("Pad", {in[0], Int64Initializer(absl::StrCat("pads_", index), pads),
                        ScalarInitializer(absl::StrCat("pad_value_", index), static_cast<float>(node.pad_value))},
                out);
        break;
      }
      case OpKind::kMean: {
        onnx::NodeProto* mean = AddNode("ReduceMean", in, out);
        IntsAttribute(mean, "axes", node.dims);
        IntAttribute(mean, "keepdims", node.keepdim);
        break;
      }
      case OpKind::kIdentity: AddNode("Identity", in, out); break;
    }
    Produced(node.output);
  }

  const QuantizedModel& model_;
  const bool qdq_;
  const Graph& graph_;
  onnx::GraphProto* onnx_ = nullptr;
};

}  // namespace

absl::StatusOr<std::string> BuildOnnx(const QuantizedModel& model, OnnxVariant variant) {
  if (!model.calibrated) return absl::FailedPreconditionError("ONNX export needs a calibrated model");
  try {
    std::string bytes;
    if (!OnnxWriter(model, variant).Build().SerializeToString(&bytes)) {
      return absl::InternalError("cannot serialize the ONNX model");
    }
    return bytes;
  } catch (const ExportError& e) {
    return absl::InvalidArgumentError(e.what());
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("ONNX export: ", e.what()));
  }
}

std::string TensorRtCalibrationCache(const QuantizedModel& model) {
  std::string cache = "TRT-8600-EntropyCalibration2\n";
  for (size_t v = 0; v < model.activations.size(); ++v) {
    const std::optional<ActivationQParams>& qparams = model.activations[v];
    if (!qparams) continue;
    const float scale = static_cast<float>(qparams->threshold / 127.0);
    uint32_t bits = 0;
    std::memcpy(&bits, &scale, sizeof(bits));
    absl::StrAppendFormat(&cache, "%s: %08x\n", v == 0 ? "input" : absl::StrCat("v", v), bits);
  }
  return cache;
}

}  // namespace ptq::core
