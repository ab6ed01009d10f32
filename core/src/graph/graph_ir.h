#ifndef PTQ_CORE_SRC_GRAPH_GRAPH_IR_H_
#define PTQ_CORE_SRC_GRAPH_GRAPH_IR_H_

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace ptq::core {

// The ops MobileNet-family CNNs use. Anything else is refused at import.
enum class OpKind {
  kConv2d,             // incl. depthwise / grouped
  kLinear,
  kBatchNorm,          // inference form: running statistics
  kRelu,
  kHardtanh,           // ReLU6 is hardtanh(0, 6)
  kHardswish,
  kHardsigmoid,
  kSigmoid,
  kAdd,                // tensor + tensor, or tensor + scalar
  kMul,                // tensor * tensor, or tensor * scalar
  kAvgPool2d,
  kMaxPool2d,
  kAdaptiveAvgPool2d,
  kFlatten,
  kReshape,            // reshape and view
  kCat,
  kPad,                // constant padding
  kMean,
  kIdentity,           // dropout in eval mode, contiguous, detach
};
const char* OpKindName(OpKind kind);

// An activation the passes merged into the conv/linear before it: the unit is then quantized
// as one (its output range is the activation's, e.g. [0, 6] for ReLU6).
enum class FusedActivation { kNone, kRelu, kRelu6 };

struct PoolAttributes {
  std::vector<int64_t> kernel, stride, padding, dilation;
  std::vector<int64_t> output_size;  // adaptive pooling
  bool ceil_mode = false;
  bool count_include_pad = true;
  std::optional<int64_t> divisor_override;
};

// One op. Values are numbered; `inputs` and `output` are value ids. Only the fields of the
// node's kind are meaningful.
struct Node {
  OpKind kind = OpKind::kIdentity;
  std::string module_path;  // e.g. "features.3.block.2.fc1"; "" for ops in the top forward()
  std::string source;       // "file:line" of the TorchScript source, when known
  std::vector<int> inputs;
  int output = -1;

  // kConv2d, kLinear, kBatchNorm.
  at::Tensor weight;
  at::Tensor bias;                        // may be undefined for conv/linear without bias
  at::Tensor running_mean, running_var;   // kBatchNorm
  double eps = 1e-5;                      // kBatchNorm
  std::vector<int64_t> stride, padding, dilation;  // kConv2d
  int64_t groups = 1;                     // kConv2d
  FusedActivation activation = FusedActivation::kNone;
  std::string folded_batch_norm;          // module path of a BatchNorm folded into this node

  // kHardtanh: clamp range; kAdd: alpha; kAdd/kMul: scalar operand instead of inputs[1].
  double min_value = 0, max_value = 0;
  double alpha = 1;
  std::optional<double> scalar_operand;

  PoolAttributes pool;             // kAvgPool2d, kMaxPool2d, kAdaptiveAvgPool2d

  // kFlatten: {start, end}; kCat, kMean: dims; kPad: amounts; kReshape: target shape, where
  // entries flagged in `shape_from_input` are copied from the input's size at that index.
  std::vector<int64_t> dims;
  std::vector<bool> shape_from_input;
  bool keepdim = false;            // kMean
  double pad_value = 0;            // kPad
};

// A straight-line graph in topological order with one tensor input and one tensor output.
struct Graph {
  std::vector<Node> nodes;
  int input = 0;
  int output = 0;
  int num_values = 1;
};

// For each value id, the indices of the nodes that read it.
std::vector<std::vector<int>> ConsumersOf(const Graph& graph);

// Index of the node producing each value id; -1 for the graph input.
std::vector<int> ProducersOf(const Graph& graph);

// Index of the last node reading each value id; -1 for values nothing reads. Executors release
// a value right after its last use.
std::vector<int> LastUses(const Graph& graph);

// Conv and linear: the layers with weights, which int8 quantizes and BatchNorm folds into.
bool IsWeightedLayer(const Node& node);

// "conv 'features.3.0'"-style label for messages.
std::string Describe(const Node& node);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_GRAPH_IR_H_
