#ifndef PTQ_SERVER_DATA_PATHS_H_
#define PTQ_SERVER_DATA_PATHS_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptq::server {

// Resolves a dataset path a client sent (config key `field`) under the server's data root.
// FAILED_PRECONDITION when the server has no data root; INVALID_ARGUMENT when empty;
// PERMISSION_DENIED for absolute paths, `..` components, and paths whose symlinks lead out of
// the root; NOT_FOUND when neither the path nor (for IDX prefixes such as
// "fashion-mnist/t10k") its folder exists. Returns the resolved, symlink-free path.
absl::StatusOr<std::filesystem::path> ResolveDataPath(const std::string& data_root, absl::string_view relative,
                                                      absl::string_view field);

}  // namespace ptq::server

#endif  // PTQ_SERVER_DATA_PATHS_H_
