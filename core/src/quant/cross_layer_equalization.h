#ifndef PTQ_CORE_SRC_QUANT_CROSS_LAYER_EQUALIZATION_H_
#define PTQ_CORE_SRC_QUANT_CROSS_LAYER_EQUALIZATION_H_

#include <ATen/ATen.h>

#include <vector>

#include "graph/graph_ir.h"
#include "quant/quant_plan.h"

namespace ptq::core {

// Cross-layer equalization of activation ranges (ptq.equalize). An activation is quantized
// per tensor, so a channel whose values span a hundredth of the tensor's range gets a few
// levels of it. Where a conv's output (after its fused ReLU / ReLU6, or none) is read by exactly
// one int8 conv, that channel c can be carried as k_c times itself: the producer's output
// channel c (weights and bias) multiplied by k_c, the reader's input channel c divided by it.
// The pair computes the same function (a ReLU commutes with k_c > 0; a ReLU6's clip at 6 holds
// because k_c a_c stays within the largest channel's range, at most 6), except that channel c
// is now clipped at 6 / k_c, at or above the largest value calibration saw in it.
//
// Per-channel weight scales make the producer's scaling free. For a depthwise reader (one
// input channel per output channel, each with its own weight scale) dividing is free too; for
// any other reader, column c of each filter shrinks within a filter whose scale its other
// columns set, so the scales are a compromise (EqualizationScales).

struct EqualizablePair {
  int producer = -1;  // node index
  int consumer = -1;  // node index
  int value = -1;     // the activation between them
  bool depthwise_consumer = false;
};

// Pairs in graph order: an int8 conv (groups 1 or depthwise) whose output, a quantized
// activation, is read by one int8 conv only (groups 1 or depthwise with as many channels).
std::vector<EqualizablePair> FindEqualizablePairs(const Graph& graph, const QuantPlan& plan);

// k_c for channel ranges a_c (each channel's largest |value| on calibration images), with
// M = max_c a_c:
//   depthwise reader: k_c = M / a_c, so every channel spans M;
//   other readers:    k_c = sqrt(M / a_c), halfway in log scale between the activation's and
//                     the reader's column precision;
// k_c = 1 where a_c = 0 (a channel that never fires carries nothing), and k_c is at most
// kMaxEqualizationScale so a nearly dead channel does not vanish from its reader's weights.
inline constexpr double kMaxEqualizationScale = 256;
std::vector<double> EqualizationScales(const std::vector<double>& channel_ranges, bool depthwise_consumer);

// Multiplies the producer's output channel c by scales[c] and divides the consumer's input
// channel c by it (scales on the graph's device, float).
void RescaleChannels(Graph& graph, const EqualizablePair& pair, const at::Tensor& scales);

// Measures every pair's channel ranges on `batches` with the fp32 graph as it is, then rescales
// them all (one pass suffices: each layer's output is unchanged by the rescaling of its input).
// Returns the rescaled activations' value ids, in graph order.
std::vector<int> EqualizeActivationRanges(Graph& graph, const QuantPlan& plan, const std::vector<at::Tensor>& batches);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_CROSS_LAYER_EQUALIZATION_H_
