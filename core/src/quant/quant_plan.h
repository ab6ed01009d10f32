#ifndef PTQ_CORE_SRC_QUANT_QUANT_PLAN_H_
#define PTQ_CORE_SRC_QUANT_QUANT_PLAN_H_

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph_ir.h"
#include "graph/graph_passes.h"
#include "quant/quant_math.h"

namespace ptq::core {

// Where an activation's quantization parameters come from.
enum class PointSource {
  kObserved,           // an observer over the calibration batches
  kFixedUnitInterval,  // (hard)sigmoid outputs in [0, 1]: scale 1/256, zero point 0, as int8 kernels fix it
  kSameAsInput,        // pooling, reshapes, clamps: the input's parameters carry through
};

struct ActivationPoint {
  PointSource source = PointSource::kObserved;
  ActivationScheme scheme = ActivationScheme::kSigned;
  int same_as = -1;   // kSameAsInput: the value whose observed or fixed parameters it shares
  std::string name;   // "input", or the module path of the op producing the value
  // kUnsigned values never exceed this (6 after a ReLU6, a hardtanh's max): an observed
  // threshold is capped at it.
  double upper_bound = std::numeric_limits<double>::infinity();
};

// Which ops run in int8 and which activations are quantized, the way an int8 backend runs the
// model: an int8 op's output is quantized (conv/linear units, add, mul, cat, hardswish with
// their own observer; sigmoid gates fixed; shape and pooling ops sharing their input's); a
// float value read by an int8 op is quantized at that boundary with its own observer.
struct QuantPlan {
  std::vector<bool> node_is_int8;              // by node index
  std::vector<std::string> float_reason;       // by node index; why a node stays float
  std::vector<std::optional<ActivationPoint>> points;  // by value id

  // Value ids whose parameters an observer must estimate, in graph order.
  std::vector<int> ObservedValues() const;
};

struct PlanOptions {
  std::vector<std::string> skip_layers;  // conv/linear module paths kept in float
  bool skip_se_quant = false;            // keep each SE block's two inner layers in float
  // conv/linear module paths the accuracy budget (ptq.min_agreement / max_top1_drop) keeps in
  // float; names come from the graph, so none is unknown.
  std::vector<std::string> budget_float_layers;
};

// INVALID_ARGUMENT ("ptq.skip_layers: ...") for a skip_layers name that is no conv or linear.
absl::StatusOr<QuantPlan> PlanQuantization(const Graph& graph, const std::vector<SeBlock>& se_blocks,
                                           const PlanOptions& options);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_QUANT_PLAN_H_
