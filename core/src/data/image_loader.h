#ifndef PTQ_CORE_SRC_DATA_IMAGE_LOADER_H_
#define PTQ_CORE_SRC_DATA_IMAGE_LOADER_H_

#include <cstdint>

#include "absl/status/status.h"

namespace ptq::core {

// Random access to one dataset's images, already preprocessed. Load is called concurrently
// from several threads, so implementations keep no mutable state.
class ImageLoader {
 public:
  virtual ~ImageLoader() = default;
  virtual int64_t size() const = 0;
  // Writes image `index` (sample_numel floats, CHW) to `out` and its label to `label`.
  virtual absl::Status Load(int64_t index, float* out, int32_t* label) const = 0;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_IMAGE_LOADER_H_
