#ifndef PTQ_CORE_SRC_DATA_IMAGE_PREPROCESS_H_
#define PTQ_CORE_SRC_DATA_IMAGE_PREPROCESS_H_

#include <opencv2/core.hpp>

#include <string>

#include "absl/status/status.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// Preprocesses a decoded 8-bit image (1 channel, or 3 in OpenCV's BGR order) into `out`
// (spec.sample_numel() floats, CHW). The spec must have passed ValidatePreprocessSpec.
// INVALID_ARGUMENT naming `what` when the resized image would exceed kMaxImagePixels or OpenCV
// refuses it; RESOURCE_EXHAUSTED when memory runs out. Nothing OpenCV throws escapes.
absl::Status PreprocessDecoded(const cv::Mat& image, const PreprocessSpec& spec, const std::string& what,
                               float* out);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_IMAGE_PREPROCESS_H_
