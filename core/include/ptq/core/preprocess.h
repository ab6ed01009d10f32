#ifndef PTQ_CORE_PREPROCESS_H_
#define PTQ_CORE_PREPROCESS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptq::core {

enum class ColorOrder { kRgb, kBgr };

// How a decoded image becomes a model input, as in the seed: resize so the short side is
// `resize_short` (bilinear; the long side rounds half up), center crop `size` x `size`
// (top = (H - size) / 2, left = (W - size) / 2), then x = (pixel - mean[c]) / std[c] with
// pixels in 0..255, laid out CHW. `resize_short` = 0 resizes the whole image to size x size
// instead (for small images such as MNIST's 28 x 28).
struct PreprocessSpec {
  int size = 224;
  int resize_short = 256;
  std::vector<float> mean = {123.675f, 116.28f, 103.53f};  // one per channel, or one for all
  std::vector<float> std = {58.395f, 57.12f, 57.375f};
  ColorOrder color_order = ColorOrder::kRgb;
  int channels = 3;  // 3 (color) or 1 (grayscale); inputs are converted to match

  int64_t sample_numel() const { return int64_t{channels} * size * size; }
};

// Bounds on what a client may ask for. A crop beyond 1024 is no classifier we serve; the
// resize and pixel caps (on an image as decoded and as resized) keep one image's buffers to a
// few hundred MB; mean and std are in 0..255 pixel units, where a std below 0.01 amplifies one
// grey level past 25,000.
inline constexpr int kMaxInputSize = 1024;
inline constexpr int kMaxResizeShort = 4096;
inline constexpr int64_t kMaxImagePixels = int64_t{64} << 20;
inline constexpr float kMaxAbsMean = 1000.0f;
inline constexpr float kMinStd = 0.01f;
inline constexpr float kMaxStd = 1000.0f;

// INVALID_ARGUMENT naming the field (size, resize_short, mean, std, channels) when the spec
// cannot work: sizes outside their bounds, resize_short < size, wrong mean/std counts,
// mean or std not finite or outside [kMinStd, kMaxStd] / [-kMaxAbsMean, kMaxAbsMean].
absl::Status ValidatePreprocessSpec(const PreprocessSpec& spec);

// "RGB" / "BGR" (any case); INVALID_ARGUMENT otherwise.
absl::StatusOr<ColorOrder> ParseColorOrder(absl::string_view text);

// Decodes an encoded image (PNG, JPEG, BMP, PNM, WebP) and preprocesses it into `out`, which must
// hold spec.sample_numel() floats. INVALID_ARGUMENT naming `what` when it is not a PNG, JPEG,
// BMP, PNM or WebP image, when its header gives more than kMaxImagePixels (checked before
// decoding), or when it does not decode.
absl::Status DecodeAndPreprocess(absl::string_view encoded, const PreprocessSpec& spec,
                                 const std::string& what, float* out);

}  // namespace ptq::core

#endif  // PTQ_CORE_PREPROCESS_H_
