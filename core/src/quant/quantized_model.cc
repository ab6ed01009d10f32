#include "quant/quantized_model.h"

#include <cmath>
#include <map>

#include "graph/executor.h"

namespace ptq::core {

const Graph& Fp32AsUploaded(const QuantizedModel& model) {
  return model.before_equalization ? *model.before_equalization : model.fp32;
}

at::Tensor RunFp32(const QuantizedModel& model, const at::Tensor& input) {
  return RunGraph(Fp32AsUploaded(model), input);
}

void RoundToQuantizedGrid(const QuantizedModel& model, int value_id, at::Tensor& tensor) {
  if (const std::optional<ActivationQParams>& qparams = model.activations[static_cast<size_t>(value_id)]) {
    tensor = FakeQuantizeActivation(tensor, *qparams);
  }
}

bool RunsAsInt8Kernel(const QuantizedModel& model, size_t node_index) {
  const Node& node = model.simulated.nodes[node_index];
  return model.plan.node_is_int8[node_index] && IsWeightedLayer(node) && model.weights[node_index] &&
         model.activations[static_cast<size_t>(node.inputs[0])] && model.activations[static_cast<size_t>(node.output)];
}

void PrepareInt8Kernels(QuantizedModel& model) {
  model.int8_kernels.assign(model.simulated.nodes.size(), std::nullopt);
  model.unaligned_channels = 0;
  for (size_t i = 0; i < model.simulated.nodes.size(); ++i) {
    if (!RunsAsInt8Kernel(model, i)) continue;
    Node& node = model.simulated.nodes[i];
    WeightQParams& weights = *model.weights[i];
    const double input_scale = model.activations[static_cast<size_t>(node.inputs[0])]->scale;
    const double output_scale = model.activations[static_cast<size_t>(node.output)]->scale;
    AlignedLayer aligned = AlignRequantization(input_scale, weights.scales, node.bias, output_scale);
    weights.scales = aligned.weight_scales;
    // From the simulated weight, whose rounding may have been learned: a scale moved by a few
    // float steps keeps every code (a near-empty channel's scale raised for its bias is
    // re-rounded from its codes).
    node.weight = FakeQuantizeWeight(node.weight, weights);
    node.bias = aligned.bias;
    model.unaligned_channels += aligned.unaligned_channels;
    model.int8_kernels[i] = OnednnKernelParams(node.weight, weights, input_scale, node.bias, output_scale);
  }
}

namespace {

// Node runner of the simulation: int8 kernel layers as their kernels compute them; float
// conv/linear layers reading a quantized 4-D value read it channels-last, as the int8 file's
// dequantized values are: a float convolution sums in another order on the other layout, and
// its last-bit differences flipped roundings at the next quantization
// (RealAccuracyTest.ABudgetIsMetOnHeldOutImagesAndTheReportNamesTheFloatLayers).
NodeRunner SimulatedNodeRunner(const QuantizedModel& model) {
  return [&model](size_t index, const std::vector<at::Tensor>& inputs) {
    const Node& node = model.simulated.nodes[index];
    if (index >= model.int8_kernels.size() || !model.int8_kernels[index]) {
      if (IsWeightedLayer(node) && !model.plan.node_is_int8[index] && inputs[0].dim() == 4 &&
          model.activations[static_cast<size_t>(node.inputs[0])]) {
        return RunNode(node, {inputs[0].contiguous(at::MemoryFormat::ChannelsLast)});
      }
      return RunNode(node, inputs);
    }
    return RunInt8WeightedLayer(node, inputs[0], *model.activations[static_cast<size_t>(node.inputs[0])],
                                *model.int8_kernels[index], *model.activations[static_cast<size_t>(node.output)]);
  };
}

// By value id: whether an int8 kernel layer produces it. RunInt8WeightedLayer returns those
// on their grid already, so the simulation does not round them a second time.
std::vector<bool> Int8KernelOutputs(const QuantizedModel& model) {
  std::vector<bool> kernel_output(static_cast<size_t>(model.simulated.num_values), false);
  for (size_t i = 0; i < model.int8_kernels.size(); ++i) {
    if (model.int8_kernels[i]) kernel_output[static_cast<size_t>(model.simulated.nodes[i].output)] = true;
  }
  return kernel_output;
}

}  // namespace

at::Tensor RunSimulated(const QuantizedModel& model, const at::Tensor& input) {
  const std::vector<bool> kernel_output = Int8KernelOutputs(model);
  return RunGraph(
      model.simulated, input,
      [&](int value, at::Tensor& tensor) {
        if (!kernel_output[static_cast<size_t>(value)]) RoundToQuantizedGrid(model, value, tensor);
      },
      SimulatedNodeRunner(model));
}

std::vector<QuantizedModel::LayerSqnr> MeasureLayerSqnr(const QuantizedModel& model, const at::Tensor& input) {
  // Outputs of the int8 weighted layers, by value id.
  std::map<int, int> layer_of_value;
  for (size_t i = 0; i < model.fp32.nodes.size(); ++i) {
    const Node& node = model.fp32.nodes[i];
    if (model.plan.node_is_int8[i] && IsWeightedLayer(node)) {
      layer_of_value[node.output] = static_cast<int>(i);
    }
  }
  std::map<int, at::Tensor> reference;
  RunGraph(model.fp32, input, [&](int value, at::Tensor& tensor) {
    if (layer_of_value.count(value) != 0) reference[value] = tensor;
  });
  std::vector<QuantizedModel::LayerSqnr> result;
  const std::vector<bool> kernel_output = Int8KernelOutputs(model);
  RunGraph(
      model.simulated, input,
      [&](int value, at::Tensor& tensor) {
        if (!kernel_output[static_cast<size_t>(value)]) RoundToQuantizedGrid(model, value, tensor);
        auto layer = layer_of_value.find(value);
        if (layer == layer_of_value.end()) return;
        const at::Tensor& fp32 = reference.at(value);
        const double signal = fp32.to(at::kDouble).pow(2).sum().item<double>();
        const double noise = (tensor - fp32).to(at::kDouble).pow(2).sum().item<double>();
        const Node& node = model.fp32.nodes[static_cast<size_t>(layer->second)];
        result.push_back({node.module_path, OpKindName(node.kind),
                          noise == 0 ? INFINITY : 10.0 * std::log10(signal / noise)});
        reference.erase(value);
      },
      SimulatedNodeRunner(model));
  return result;
}

}  // namespace ptq::core
