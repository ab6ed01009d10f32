#include "ptq/core/preprocess.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <new>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "data/image_header.h"
#include "data/image_preprocess.h"

namespace ptq::core {
namespace {

// The resized image's size: the short side becomes `short_side`, the long side is rounded half
// up, as the seed's reader and the shared model's sidecar do.
cv::Size ShortSideTarget(const cv::Mat& image, int short_side) {
  const int height = image.rows;
  const int width = image.cols;
  const double scale = static_cast<double>(short_side) / std::min(height, width);
  const double new_height = height <= width ? short_side : std::floor(height * scale + 0.5);
  const double new_width = width < height ? short_side : std::floor(width * scale + 0.5);
  // Clamped so that the pixel-count check below sees an extreme aspect ratio, not an overflow.
  const double most = std::numeric_limits<int>::max();
  return cv::Size(static_cast<int>(std::min(new_width, most)), static_cast<int>(std::min(new_height, most)));
}

cv::Mat ToChannels(const cv::Mat& image, int channels) {
  if (image.channels() == channels) return image;
  cv::Mat converted;
  cv::cvtColor(image, converted, channels == 1 ? cv::COLOR_BGR2GRAY : cv::COLOR_GRAY2BGR);
  return converted;
}

}  // namespace

absl::Status ValidatePreprocessSpec(const PreprocessSpec& spec) {
  if (spec.size < 1 || spec.size > kMaxInputSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.size must be in [1, ", kMaxInputSize, "], got ", spec.size));
  }
  if (spec.resize_short != 0 && (spec.resize_short < spec.size || spec.resize_short > kMaxResizeShort)) {
    return absl::InvalidArgumentError(absl::StrCat("input.resize_short must be 0 or in [input.size (", spec.size,
                                                   "), ", kMaxResizeShort, "], got ", spec.resize_short));
  }
  if (spec.channels != 1 && spec.channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("input channels must be 1 or 3, got ", spec.channels));
  }
  const auto check_count = [&spec](const char* name, const std::vector<float>& values) {
    if (values.size() == 1 || values.size() == static_cast<size_t>(spec.channels)) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("input.", name, " needs 1 or ", spec.channels,
                                                   " values, got ", values.size()));
  };
  if (absl::Status status = check_count("mean", spec.mean); !status.ok()) return status;
  if (absl::Status status = check_count("std", spec.std); !status.ok()) return status;
  // Negated comparisons so that NaN fails them too.
  for (float value : spec.mean) {
    if (!(std::fabs(value) <= kMaxAbsMean)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input.mean values must be finite and in [-", kMaxAbsMean, ", ", kMaxAbsMean, "], got ", value));
    }
  }
  for (float value : spec.std) {
    if (!(value >= kMinStd && value <= kMaxStd)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input.std values must be in [", kMinStd, ", ", kMaxStd, "], got ", value));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ColorOrder> ParseColorOrder(absl::string_view text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  if (upper == "RGB" || upper.empty()) return ColorOrder::kRgb;
  if (upper == "BGR") return ColorOrder::kBgr;
  return absl::InvalidArgumentError(
      absl::StrCat("input.color_order must be \"RGB\" or \"BGR\", got \"", text, "\""));
}

absl::Status PreprocessDecoded(const cv::Mat& image, const PreprocessSpec& spec, const std::string& what,
                               float* out) {
  const cv::Size target =
      spec.resize_short == 0 ? cv::Size(spec.size, spec.size) : ShortSideTarget(image, spec.resize_short);
  if (int64_t{target.width} * target.height > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", image.cols, "x", image.rows,
                                                   " pixels: resized to a short side of ", spec.resize_short,
                                                   " it would exceed ", kMaxImagePixels, " pixels"));
  }
  cv::Mat crop;
  try {
    cv::Mat sized;
    cv::resize(image, sized, target, 0, 0, cv::INTER_LINEAR);
    const int top = (sized.rows - spec.size) / 2;
    const int left = (sized.cols - spec.size) / 2;
    crop = ToChannels(sized(cv::Rect(left, top, spec.size, spec.size)), spec.channels);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot preprocess ", what, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory preprocessing ", what));
  }

  // Output channel c reads source channel source_of[c]: OpenCV holds color pixels as BGR.
  const int channels = spec.channels;
  std::array<int, 3> source_of = {0, 1, 2};
  if (channels == 3 && spec.color_order == ColorOrder::kRgb) source_of = {2, 1, 0};
  std::array<float, 3> scale{};
  std::array<float, 3> offset{};
  for (int c = 0; c < channels; ++c) {
    const float mean = spec.mean[spec.mean.size() == 1 ? 0 : c];
    const float std = spec.std[spec.std.size() == 1 ? 0 : c];
    scale[c] = 1.0f / std;
    offset[c] = -mean / std;
  }
  const int64_t plane = int64_t{spec.size} * spec.size;
  for (int y = 0; y < spec.size; ++y) {
    const uint8_t* row = crop.ptr<uint8_t>(y);
    for (int x = 0; x < spec.size; ++x) {
      const uint8_t* pixel = row + int64_t{x} * channels;
      const int64_t at = int64_t{y} * spec.size + x;
      for (int c = 0; c < channels; ++c) {
        out[c * plane + at] = pixel[source_of[c]] * scale[c] + offset[c];
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeAndPreprocess(absl::string_view encoded, const PreprocessSpec& spec,
                                 const std::string& what, float* out) {
  absl::StatusOr<ImageDimensions> dimensions = ReadImageDimensions(encoded);
  if (!dimensions.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not an image we decode: ", dimensions.status().message()));
  }
  if (dimensions->width < 1 || dimensions->height < 1 ||
      dimensions->width > kMaxImagePixels / dimensions->height) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", dimensions->width, "x", dimensions->height,
                                                   " pixels by its header; 1 to ", kMaxImagePixels,
                                                   " pixels are decoded"));
  }
  const cv::Mat buffer(1, static_cast<int>(encoded.size()), CV_8UC1,
                       const_cast<char*>(encoded.data()));
  cv::Mat image;
  try {
    image = cv::imdecode(buffer, spec.channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not an image OpenCV can decode: ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory decoding ", what));
  }
  if (image.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not an image OpenCV can decode"));
  }
  return PreprocessDecoded(image, spec, what, out);
}

}  // namespace ptq::core
