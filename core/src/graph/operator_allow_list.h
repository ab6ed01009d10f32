#ifndef PTQ_CORE_SRC_GRAPH_OPERATOR_ALLOW_LIST_H_
#define PTQ_CORE_SRC_GRAPH_OPERATOR_ALLOW_LIST_H_

#include <torch/script.h>

#include <string>

#include "absl/status/status.h"

namespace ptq::core {

// An uploaded TorchScript file is a program from someone else: these checks refuse one that
// could act on the server (read a file, print into its log, call a custom operator) before
// LibTorch runs any of its code. Both name the file as `name` and say what was found;
// INVALID_ARGUMENT.

// LibTorch runs a module's __setstate__ while it loads the file, before any check of the
// loaded module could: a file whose code defines one is refused. Reads the archive's code
// records with LibTorch's own archive reader, which runs nothing. Call before
// torch::jit::load, on a file whose expanded size is bounded.
absl::Status CheckNoCodeRunsOnLoad(const std::string& path, const std::string& name);

// Every operator forward() can reach (called methods and functions inlined, nested blocks
// included) must be a pure tensor operation or TorchScript glue a classifier uses. Call on the
// loaded module before freezing it: freezing folds constants, which runs operators.
absl::Status CheckOperatorsAllowed(const torch::jit::Module& module, const std::string& name);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_OPERATOR_ALLOW_LIST_H_
