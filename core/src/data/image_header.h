#ifndef PTQ_CORE_SRC_DATA_IMAGE_HEADER_H_
#define PTQ_CORE_SRC_DATA_IMAGE_HEADER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptq::core {

struct ImageDimensions {
  int64_t width = 0;
  int64_t height = 0;
};

// Width and height from the header of an encoded image, without decoding it: PNG (IHDR),
// JPEG (the first start-of-frame segment), BMP, PNM (P1-P6) and WebP (VP8, VP8L, VP8X), the
// formats a client may stream. INVALID_ARGUMENT for any other format or a header cut short,
// so nothing reaches OpenCV's decoders whose size is not known first.
absl::StatusOr<ImageDimensions> ReadImageDimensions(absl::string_view encoded);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_IMAGE_HEADER_H_
