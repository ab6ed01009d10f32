#ifndef PTQ_CORE_SRC_GRAPH_TORCHSCRIPT_IMPORT_H_
#define PTQ_CORE_SRC_GRAPH_TORCHSCRIPT_IMPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "graph/graph_ir.h"

namespace ptq::core {

// Loads a TorchScript file (scripted or traced), puts it in eval mode, freezes it without
// numeric rewrites (so BatchNorm stays visible for the `fuse` pass to decide), turns in-place
// ops functional, drops shape assertions, and imports the flat graph into our IR.
// INVALID_ARGUMENT naming the op, its module path and source line for anything outside the
// supported set; NOT_FOUND for a missing file.
absl::StatusOr<Graph> ImportTorchScript(const std::string& path);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_TORCHSCRIPT_IMPORT_H_
