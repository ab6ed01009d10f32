#include "data/confined_path.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ptq::core {
namespace fs = std::filesystem;

absl::Status CheckConfined(const fs::path& path, const fs::path& root) {
  if (root.empty()) return absl::OkStatus();
  std::error_code error;
  const fs::path canonical_root = fs::canonical(root, error);
  if (error) return absl::NotFoundError(absl::StrCat("data root '", root.string(), "': ", error.message()));
  const fs::path resolved = fs::canonical(path, error);
  if (error) return absl::NotFoundError(absl::StrCat("'", path.string(), "': ", error.message()));
  const auto [root_end, unused] =
      std::mismatch(canonical_root.begin(), canonical_root.end(), resolved.begin(), resolved.end());
  if (root_end != canonical_root.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("'", path.string(), "' leads outside the server's data root (through a symlink)"));
  }
  return absl::OkStatus();
}

}  // namespace ptq::core
