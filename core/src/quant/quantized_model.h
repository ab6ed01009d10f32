#ifndef PTQ_CORE_SRC_QUANT_QUANTIZED_MODEL_H_
#define PTQ_CORE_SRC_QUANT_QUANTIZED_MODEL_H_

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "graph/graph_ir.h"
#include "graph/graph_passes.h"
#include "ptq/core/report.h"
#include "quant/int8_kernel_math.h"
#include "quant/quant_math.h"
#include "quant/quant_plan.h"

namespace ptq::core {

// A model through the passes, and (after calibration) everything needed to simulate it in int8.
struct QuantizedModel {
  Graph fp32;                     // after fuse / activation fusion (and equalization): what
                                  // int8 layers are derived from and compared with, layer by layer
  // The fp32 graph before cross-layer equalization rescaled `fp32`'s channels (Fp32AsUploaded):
  // the equalized graph clips a rescaled ReLU6 channel at 6 / k_c instead of 6.
  std::optional<Graph> before_equalization;
  std::vector<int> equalized_values;  // value ids of the activations equalization rescaled
  Graph simulated;                // same topology; int8 layers carry fake-quantized weights and
                                  // bias-corrected biases
  std::vector<SeBlock> se_blocks;
  QuantPlan plan;
  std::string activation_quantizer;                            // observer that set the thresholds
  std::vector<std::optional<ActivationQParams>> activations;  // by value id
  std::vector<std::optional<WeightQParams>> weights;          // by node index
  std::vector<at::Tensor> bias_corrections;                   // by node index; undefined if none
  // By node index, for the int8 conv/linear layers that run as int8 kernels (input and output
  // quantized): the kernel's integer parameters, so the simulation computes what it computes.
  std::vector<std::optional<Int8KernelParams>> int8_kernels;
  int64_t unaligned_channels = 0;  // see AlignRequantization
  // Signal-to-quantization-noise ratio of each int8 conv/linear output (simulated vs fp32) on
  // part of the first calibration batch: where precision is lost, layer by layer.
  struct LayerSqnr {
    std::string module_path;
    std::string op;
    double sqnr_db = 0;
  };
  std::vector<LayerSqnr> layer_sqnr;
  at::Tensor sqnr_images;  // the images layer_sqnr was measured on (part of the first batch)
  std::vector<int64_t> input_shape;  // of the first calibration batch, {N, C, H, W}
  // With held-out calibration images (ptq.sensitivity, accuracy budgets): the final model's
  // score on them, each layer's sensitivity and the weights / activations split in the
  // all-int8 plan, and the budget's search.
  std::optional<HeldOutScore> held_out;
  std::vector<QuantizerTrial> quantizer_trials;  // activation_quantizer "auto"
  std::vector<LayerSensitivity> sensitivity;
  std::optional<ErrorSources> error_sources;
  std::optional<AccuracyBudgetReport> budget;
  bool calibrated = false;
};

// 10 log10(sum fp32^2 / sum (simulated - fp32)^2) for every int8 conv/linear on `input`.
std::vector<QuantizedModel::LayerSqnr> MeasureLayerSqnr(const QuantizedModel& model, const at::Tensor& input);

// Rounds `tensor`, the simulated value `value_id`, to its uint8 grid when the value is a
// quantized activation; leaves it alone otherwise.
void RoundToQuantizedGrid(const QuantizedModel& model, int value_id, at::Tensor& tensor);

// The fp32 graph as uploaded (after fuse and activation fusion, before equalization): what
// fp32 results and the fp32 artifacts come from.
const Graph& Fp32AsUploaded(const QuantizedModel& model);

// fp32 forward of Fp32AsUploaded.
at::Tensor RunFp32(const QuantizedModel& model, const at::Tensor& input);

// True for an int8 conv/linear whose input and output are quantized: the exporters give it
// an int8 kernel.
bool RunsAsInt8Kernel(const QuantizedModel& model, size_t node_index);

// After calibration: aligns every int8 kernel layer's weight scales and bias across the int8
// runtimes (AlignRequantization), requantizes its weights into the simulated graph with those
// scales and records its kernel parameters.
void PrepareInt8Kernels(QuantizedModel& model);

// Simulated int8 forward: every quantized activation rounded to its uint8 grid as soon as it
// is produced; int8 kernel layers computed with integer accumulation and their kernel's
// requantization (bit-exact with onednn's int8 model), other layers in float on
// fake-quantized weights.
at::Tensor RunSimulated(const QuantizedModel& model, const at::Tensor& input);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_QUANTIZED_MODEL_H_
