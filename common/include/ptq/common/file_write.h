#ifndef PTQ_COMMON_FILE_WRITE_H_
#define PTQ_COMMON_FILE_WRITE_H_

#include <filesystem>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ptq {

// Creates or truncates `path` and writes `contents` with checked POSIX writes, so a full disk
// is an error here rather than an exception in some destructor later. RESOURCE_EXHAUSTED when
// the disk or quota is full (ENOSPC, EDQUOT), INTERNAL for other failures; both name the file
// and the system's reason.
absl::Status WriteFileContents(const std::filesystem::path& path, absl::string_view contents);

// The same for `parts` written one after the other (no copy of them joined).
absl::Status WriteFileParts(const std::filesystem::path& path, const std::vector<absl::string_view>& parts);

}  // namespace ptq

#endif  // PTQ_COMMON_FILE_WRITE_H_
