#ifndef PTQ_CORE_SRC_GRAPH_GRAPH_PASSES_H_
#define PTQ_CORE_SRC_GRAPH_GRAPH_PASSES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/graph_ir.h"

namespace ptq::core {

// The seed's `fuse`: folds each BatchNorm into the conv or linear that feeds it (and nothing
// else), so the pair becomes one layer: w' = w * g, b' = (b - mean) * g + beta with
// g = gamma / sqrt(var + eps) per output channel. An empty `fuse_list` folds every such pair;
// otherwise only the listed groups, each [conv_or_linear_name, batch_norm_name] as
// named_modules() names them. INVALID_ARGUMENT ("ptq.fuse_list[i]: ...") for a name that does
// not exist or a group that is not such a pair.
absl::Status FoldBatchNorms(Graph& graph, const std::vector<std::vector<std::string>>& fuse_list);

// Merges a ReLU or ReLU6 (hardtanh(0, 6)) into the conv/linear before it when it is that
// layer's only reader, so the unit's output is quantized after the activation (range [0, 6]).
void FuseActivations(Graph& graph);

// A squeeze-excitation block: pool -> fc1 -> activation -> fc2 -> (hard)sigmoid -> mul with
// the block's input. Node indices into the graph it was found in.
struct SeBlock {
  int pool = -1;
  int fc1 = -1;
  int fc2 = -1;
  int gate = -1;
  int mul = -1;
  std::string path;  // module path shared by the block's layers, e.g. "features.4.block.2"
};

// Finds SE blocks by structure (works before and after FuseActivations).
std::vector<SeBlock> FindSeBlocks(const Graph& graph);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_GRAPH_PASSES_H_
