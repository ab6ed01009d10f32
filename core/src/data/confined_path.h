#ifndef PTQ_CORE_SRC_DATA_CONFINED_PATH_H_
#define PTQ_CORE_SRC_DATA_CONFINED_PATH_H_

#include <filesystem>

#include "absl/status/status.h"

namespace ptq::core {

// OK when `root` is empty, or when `path`, with every symlink in it resolved, is `root` or lies
// below it. PERMISSION_DENIED naming `path` when it leads elsewhere; NOT_FOUND when it does not
// resolve. The server confines every dataset file a job opens to its data root this way: a
// link inside the data root that points outside it must not read the server's other files.
absl::Status CheckConfined(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_CONFINED_PATH_H_
