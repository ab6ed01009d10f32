#ifndef PTQ_CORE_SRC_IMAGE_PREPROCESS_H_
#define PTQ_CORE_SRC_IMAGE_PREPROCESS_H_

#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// Preprocesses a decoded 8-bit image (1 channel, or 3 in OpenCV's BGR order) into `out`
// (spec.sample_numel() floats, CHW). The spec must have passed ValidatePreprocessSpec.
void PreprocessDecoded(const cv::Mat& image, const PreprocessSpec& spec, float* out);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_IMAGE_PREPROCESS_H_
