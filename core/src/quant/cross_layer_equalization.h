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

// Cross-layer equalization of weight ranges, for per-tensor weights (DFQ, Nagel et al. 2019).
// With one scale per weight tensor, a filter whose weights span a hundredth of its layer's
// range gets a few of its levels. Carrying channel c as k_c times itself multiplies the
// producer's filter c by k_c and divides the reader's column c (its depthwise filter c) by it;
// k_c = sqrt(r2_c / r1_c), r1_c being the largest |weight| of the producer's filter c and r2_c
// of the reader's column c, makes both k_c r1_c = r2_c / k_c, where DFQ shows the product of
// the two layers' per-channel precisions is largest. A layer between two pairs moves twice,
// so the pairs are swept until no scale moves by more than kWeightEqualizationTolerance (at
// most kWeightEqualizationSweeps times).
//
// A ReLU6 must keep its clip: WeightEqualizationBounds keeps each channel's accumulated k_c
// where the pair computes what it did on every value calibration saw.
inline constexpr int kWeightEqualizationSweeps = 20;
inline constexpr double kWeightEqualizationTolerance = 1e-3;

// The accumulated scales k_c that keep a pair exact on every value calibration saw, for a
// channel whose largest value there was `channel_range` (a_c) behind an activation clipping at
// `upper_bound` (U; infinite for ReLU or none). The clip moves to U / k_c in channel c's units:
//   k_c <= U / a_c keeps it at or above a_c;
//   k_c >= 1 where channel c reached U (a_c >= U): values clipped before stay clipped (k_c = 1);
//   below 1 elsewhere it moves above U, where calibration saw nothing.
// Within [1 / kMaxEqualizationScale, kMaxEqualizationScale] always.
struct ScaleBounds {
  double low = 1.0 / kMaxEqualizationScale;
  double high = kMaxEqualizationScale;
};
ScaleBounds WeightEqualizationBounds(double channel_range, double upper_bound);

// One step for a pair: channel c's factor sqrt(reader_ranges[c] / producer_ranges[c]) (its
// weight ranges as they are now), cut so that applied[c] times it stays within bounds[c];
// 1 where either range is 0 (nothing to balance).
std::vector<double> WeightEqualizationStep(const std::vector<double>& producer_ranges,
                                           const std::vector<double>& reader_ranges,
                                           const std::vector<ScaleBounds>& bounds, const std::vector<double>& applied);

// Measures every pair's channel ranges on `batches` with the fp32 graph as it is, then sweeps
// the pairs (WeightEqualizationStep). Returns the rescaled activations' value ids, in graph
// order.
std::vector<int> EqualizeWeightRanges(Graph& graph, const QuantPlan& plan, const std::vector<at::Tensor>& batches);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_QUANT_CROSS_LAYER_EQUALIZATION_H_
