#include "data_paths.h"

#include "absl/strings/str_cat.h"

namespace ptq::server {
namespace fs = std::filesystem;

absl::StatusOr<fs::path> ResolveDataPath(const std::string& data_root, absl::string_view relative,
                                         absl::string_view field) {
  if (relative.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  if (data_root.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, " '", relative, "' names a server-side dataset, but this server was started without --data-root"));
  }
  const fs::path requested{std::string(relative)};
  if (requested.is_absolute()) {
    return absl::PermissionDeniedError(
        absl::StrCat(field, " '", relative, "' must be relative to the server's data root, not absolute"));
  }
  for (const fs::path& part : requested) {
    if (part == "..") {
      return absl::PermissionDeniedError(absl::StrCat(field, " '", relative, "' must not contain '..'"));
    }
  }
  std::error_code error;
  const fs::path root = fs::canonical(data_root, error);
  if (error) return absl::FailedPreconditionError(absl::StrCat("data root '", data_root, "': ", error.message()));
  // weakly_canonical follows every symlink of the existing part of the path, so a link inside
  // the root that points outside it is caught by the prefix check below.
  const fs::path resolved = fs::weakly_canonical(root / requested, error);
  if (error) return absl::InvalidArgumentError(absl::StrCat(field, " '", relative, "': ", error.message()));
  const auto [root_end, unused] = std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
  if (root_end != root.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat(field, " '", relative, "' leads outside the server's data root (through a symlink)"));
  }
  if (!fs::exists(resolved, error) && !fs::is_directory(resolved.parent_path(), error)) {
    return absl::NotFoundError(absl::StrCat(field, " '", relative, "' does not exist under the data root"));
  }
  return resolved;
}

}  // namespace ptq::server
