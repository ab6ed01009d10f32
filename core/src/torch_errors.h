#ifndef PTQ_CORE_SRC_TORCH_ERRORS_H_
#define PTQ_CORE_SRC_TORCH_ERRORS_H_

#include <c10/util/Exception.h>

#include <algorithm>
#include <exception>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace ptq::core {

// LibTorch's messages carry a C++ backtrace after the first line; people need only the reason.
inline std::string FirstLine(const std::string& text) {
  // TorchScript's compile errors start with a line break.
  const size_t start = std::min(text.find_first_not_of("\n "), text.size());
  return text.substr(start, text.find('\n', start) - start);
}

// Runs `body` (returning StatusOr<T> or T), turning LibTorch and standard exceptions into an
// INTERNAL status that says what was being done: the core boundary never lets one escape.
template <typename T, typename Body>
absl::StatusOr<T> GuardTorch(const char* what, Body&& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", FirstLine(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", FirstLine(e.what())));
  }
}

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_TORCH_ERRORS_H_
