#ifndef PTQ_CORE_SRC_GRAPH_EXECUTOR_H_
#define PTQ_CORE_SRC_GRAPH_EXECUTOR_H_

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "graph/graph_ir.h"

namespace ptq::core {

// Called with each value as soon as it is computed (the graph input included). Observers read
// it; the simulator replaces it with its fake-quantized version.
using ValueHook = std::function<void(int value_id, at::Tensor& value)>;

// Applies a conv/linear unit's fused activation (in place on `x`, which the caller owns).
at::Tensor ApplyFusedActivation(at::Tensor x, FusedActivation activation);

// Runs one node on its input tensors with its own (possibly fake-quantized) parameters.
at::Tensor RunNode(const Node& node, const std::vector<at::Tensor>& inputs);

// Computes node `index` of the graph from its inputs; RunNode when none is given. The
// simulator runs int8 conv/linear layers the way their kernels do.
using NodeRunner = std::function<at::Tensor(size_t index, const std::vector<at::Tensor>& inputs)>;

// Runs the whole graph on `input`, freeing each intermediate value after its last use.
at::Tensor RunGraph(const Graph& graph, const at::Tensor& input, const ValueHook& hook = {},
                    const NodeRunner& runner = {});

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_EXECUTOR_H_
