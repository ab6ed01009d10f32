#include "data/image_header.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <string>
#include <vector>

#include "ptq/core/preprocess.h"

namespace ptq::core {
namespace {

std::string Encode(const std::string& extension, const cv::Mat& image) {
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(extension, image, bytes)) << extension;
  return std::string(bytes.begin(), bytes.end());
}

// Every format a client may stream, encoded by OpenCV at 37 x 23, reads back as 37 x 23.
TEST(ImageHeaderTest, ReadsTheSizeOfEveryAcceptedFormat) {
  const cv::Mat color(23, 37, CV_8UC3, cv::Scalar(10, 200, 30));
  const cv::Mat gray(23, 37, CV_8UC1, cv::Scalar(99));
  for (const auto& [extension, image] : std::vector<std::pair<std::string, cv::Mat>>{
           {".png", color}, {".jpg", color}, {".bmp", color}, {".pgm", gray}, {".ppm", color}, {".webp", color}}) {
    absl::StatusOr<ImageDimensions> dimensions = ReadImageDimensions(Encode(extension, image));
    ASSERT_TRUE(dimensions.ok()) << extension << ": " << dimensions.status();
    EXPECT_EQ(dimensions->width, 37) << extension;
    EXPECT_EQ(dimensions->height, 23) << extension;
  }
  absl::StatusOr<ImageDimensions> commented = ReadImageDimensions("P5\n# made by hand\n 640 \n480\n255\n");
  ASSERT_TRUE(commented.ok()) << commented.status();
  EXPECT_EQ(commented->width, 640);
  EXPECT_EQ(commented->height, 480);
}

TEST(ImageHeaderTest, OtherFormatsAndCutHeadersAreRefused) {
  const cv::Mat color(4, 4, CV_8UC3, cv::Scalar(1, 2, 3));
  EXPECT_NE(ReadImageDimensions(Encode(".tiff", color)).status().message().find("not a PNG, JPEG, BMP, PNM or WebP"),
            absl::string_view::npos);
  EXPECT_NE(ReadImageDimensions(Encode(".png", color).substr(0, 20)).status().message().find("PNG header is cut short"),
            absl::string_view::npos);
  EXPECT_NE(ReadImageDimensions(Encode(".jpg", color).substr(0, 30)).status().message().find("JPEG header is cut short"),
            absl::string_view::npos);
}

// Regression: 16 PNGs of 20000 x 20000 (a few hundred KB each) were decoded, 33 s of a shared
// pool. Their size is read from the header, and they are refused before decoding.
TEST(ImageHeaderTest, ImagesOverThePixelCapAreRefusedBeforeDecoding) {
  std::string png = Encode(".png", cv::Mat(2, 2, CV_8UC3, cv::Scalar(0, 0, 0)));
  for (const size_t at : {16u, 20u}) {  // IHDR width and height, big-endian
    png[at] = 0;
    png[at + 1] = 0;
    png[at + 2] = static_cast<char>(20000 >> 8);
    png[at + 3] = static_cast<char>(20000 & 0xFF);
  }
  std::vector<float> out(static_cast<size_t>(PreprocessSpec().sample_numel()));
  const absl::Status status = DecodeAndPreprocess(png, PreprocessSpec(), "image 2 of batch 1", out.data());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("image 2 of batch 1 is 20000x20000 pixels by its header"), absl::string_view::npos)
      << status;
}

}  // namespace
}  // namespace ptq::core
