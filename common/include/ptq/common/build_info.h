#ifndef PTQ_COMMON_BUILD_INFO_H_
#define PTQ_COMMON_BUILD_INFO_H_

#include <string_view>

namespace ptq {

// ptq-service's release version (the CMake project's VERSION), e.g. "0.1.0".
std::string_view Version();

// The git commit the binaries were built from (`git describe --always --dirty`), refreshed at
// every build; "unknown" when built outside a git checkout (a source tarball, an image build
// without .git).
std::string_view BuildCommit();

}  // namespace ptq

#endif  // PTQ_COMMON_BUILD_INFO_H_
