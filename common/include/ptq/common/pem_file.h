#ifndef PTQ_COMMON_PEM_FILE_H_
#define PTQ_COMMON_PEM_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptq {

// The text of a PEM file (certificates or a key) that `flag` names. INVALID_ARGUMENT naming
// the flag and the path when it cannot be read or holds no "-----BEGIN " block.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view flag);

}  // namespace ptq

#endif  // PTQ_COMMON_PEM_FILE_H_
