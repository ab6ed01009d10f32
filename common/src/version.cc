#include "ptq/common/build_info.h"

namespace ptq {

std::string_view Version() { return PTQ_VERSION; }

}  // namespace ptq
