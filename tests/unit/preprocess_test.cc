#include "ptq/core/preprocess.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "subprocess.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;


std::string EncodePng(const cv::Mat& image) {
  std::vector<uchar> png;
  cv::imencode(".png", image, png);
  return std::string(png.begin(), png.end());
}

std::vector<float> Preprocess(const std::string& encoded, const PreprocessSpec& spec) {
  std::vector<float> out(static_cast<size_t>(spec.sample_numel()));
  absl::Status status = DecodeAndPreprocess(encoded, spec, "test image", out.data());
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

// Runs tests/fixtures/preprocess_reference.py (python3-opencv) on `image`.
std::vector<float> PythonReference(const fs::path& image, const PreprocessSpec& spec) {
  ptq::testing::TempDir dir;
  const fs::path out = dir.path() / "reference.f32";
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   (ptq::testing::FixturesDir() / "preprocess_reference.py").string(),
                                   image.string(), out.string(),
                                   "--size", std::to_string(spec.size),
                                   "--resize-short", std::to_string(spec.resize_short),
                                   "--color", spec.color_order == ColorOrder::kRgb ? "RGB" : "BGR",
                                   "--channels", std::to_string(spec.channels), "--mean"};
  for (float m : spec.mean) argv.push_back(std::to_string(m));
  argv.push_back("--std");
  for (float s : spec.std) argv.push_back(std::to_string(s));
  ptq::testing::ProcessResult result = ptq::testing::RunProcess(argv);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  const std::string bytes = ptq::testing::ReadFileBytes(out);
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

TEST(PreprocessSpecTest, DefaultsAreTheSeeds) {
  const PreprocessSpec spec;
  EXPECT_EQ(spec.size, 224);
  EXPECT_EQ(spec.resize_short, 256);
  EXPECT_EQ(spec.color_order, ColorOrder::kRgb);
  EXPECT_TRUE(ValidatePreprocessSpec(spec).ok());
}

TEST(PreprocessSpecTest, ErrorsNameTheField) {
  const struct {
    void (*mutate)(PreprocessSpec&);
    const char* field;
  } cases[] = {
      {[](PreprocessSpec& s) { s.size = 0; }, "input.size"},
      {[](PreprocessSpec& s) { s.resize_short = 100; }, "input.resize_short"},
      {[](PreprocessSpec& s) { s.mean = {1, 2}; }, "input.mean"},
      {[](PreprocessSpec& s) { s.std = {1, 0, 1}; }, "input.std"},
      {[](PreprocessSpec& s) { s.channels = 2; }, "channels"},
      // Regressions: each of these used to be accepted.
      {[](PreprocessSpec& s) { s.resize_short = 2147483647; }, "input.resize_short"},
      {[](PreprocessSpec& s) { s.size = 100000; }, "input.size"},
      {[](PreprocessSpec& s) { s.mean = {std::nanf("")}; }, "input.mean"},
      {[](PreprocessSpec& s) { s.std = {1e-45f}; }, "input.std"},
      {[](PreprocessSpec& s) { s.std = {std::numeric_limits<float>::infinity()}; }, "input.std"},
      {[](PreprocessSpec& s) { s.std = {std::nanf("")}; }, "input.std"},
  };
  for (const auto& c : cases) {
    PreprocessSpec spec;
    c.mutate(spec);
    const absl::Status status = ValidatePreprocessSpec(spec);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.field;
    EXPECT_NE(status.message().find(c.field), absl::string_view::npos) << status;
  }
}

// Regression: a resize OpenCV cannot allocate threw cv::Exception out of a decode thread and
// aborted the server. A long thin image resized to a large short side is refused by its size
// before any allocation.
TEST(PreprocessTest, ResizeBeyondThePixelCapIsAnErrorNamingTheImage) {
  PreprocessSpec spec;
  spec.resize_short = kMaxResizeShort;
  const cv::Mat strip(2, 4000, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<float> out(static_cast<size_t>(spec.sample_numel()));
  const absl::Status status = DecodeAndPreprocess(EncodePng(strip), spec, "stream image 3", out.data());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("stream image 3 is 4000x2 pixels"), absl::string_view::npos) << status;
}

TEST(PreprocessSpecTest, ParsesColorOrder) {
  EXPECT_EQ(*ParseColorOrder("rgb"), ColorOrder::kRgb);
  EXPECT_EQ(*ParseColorOrder("BGR"), ColorOrder::kBgr);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseColorOrder("YUV").status()));
}

// A 4 x 6 image, cropped to its central 2 x 2 without resizing (short side already 4 -> crop
// rows 1..2, cols 2..3), checked against values computed by hand.
TEST(PreprocessTest, CropAndNormalizeByHand) {
  cv::Mat bgr(4, 6, CV_8UC3);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 6; ++x) bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(10 * x, 20 * y, 100);
  }
  PreprocessSpec spec;
  spec.size = 2;
  spec.resize_short = 4;
  spec.mean = {100, 20, 10};
  spec.std = {2, 4, 5};
  const std::vector<float> rgb = Preprocess(EncodePng(bgr), spec);
  // Channel 0 is red = 100 everywhere: (100 - 100) / 2 = 0.
  // Channel 1 is green = 20 * y for y = 1, 2: (20 - 20) / 4 = 0 and (40 - 20) / 4 = 5.
  // Channel 2 is blue = 10 * x for x = 2, 3: (20 - 10) / 5 = 2 and (30 - 10) / 5 = 4.
  EXPECT_EQ(rgb, (std::vector<float>{0, 0, 0, 0, 0, 0, 5, 5, 2, 4, 2, 4}));

  spec.color_order = ColorOrder::kBgr;
  const std::vector<float> bgr_out = Preprocess(EncodePng(bgr), spec);
  // Channel 0 is now blue: (20 - 100) / 2 = -40 and (30 - 100) / 2 = -35.
  EXPECT_FLOAT_EQ(bgr_out[0], -40);
  EXPECT_FLOAT_EQ(bgr_out[1], -35);
}

TEST(PreprocessTest, GrayscaleIsReplicatedToThreeChannels) {
  cv::Mat gray(8, 8, CV_8UC1, cv::Scalar(51));
  PreprocessSpec spec;
  spec.size = 4;
  spec.resize_short = 0;  // resize the whole image to 4 x 4
  spec.mean = {0};
  spec.std = {255};
  for (float value : Preprocess(EncodePng(gray), spec)) EXPECT_FLOAT_EQ(value, 0.2f);
}

TEST(PreprocessTest, UndecodableBytesNameTheImage) {
  std::vector<float> out(static_cast<size_t>(PreprocessSpec().sample_numel()));
  absl::Status status = DecodeAndPreprocess("not an image", PreprocessSpec(), "image 7 of the stream", out.data());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("image 7 of the stream"), absl::string_view::npos);
}

// The committed non-square JPEG against python3-opencv, in RGB, BGR and grayscale.
TEST(PreprocessTest, MatchesPythonOpenCvOnTheCommittedJpeg) {
  const fs::path image = ptq::testing::TestDataDir() / "texture_120x90.jpg";
  const std::string encoded = ptq::testing::ReadFileBytes(image);
  PreprocessSpec spec;
  spec.size = 56;
  spec.resize_short = 68;  // long side 120 * 68 / 90 = 90.67: rounding half up matters
  EXPECT_LE(MaxAbsDiff(Preprocess(encoded, spec), PythonReference(image, spec)), 1e-3f);
  spec.color_order = ColorOrder::kBgr;
  EXPECT_LE(MaxAbsDiff(Preprocess(encoded, spec), PythonReference(image, spec)), 1e-3f);
  spec.channels = 1;
  spec.mean = {127.5f};
  spec.std = {127.5f};
  EXPECT_LE(MaxAbsDiff(Preprocess(encoded, spec), PythonReference(image, spec)), 1e-3f);
}

// A real ImageNet JPEG with the seed's defaults (256 -> 224, ImageNet mean/std, RGB).
TEST(PreprocessTest, MatchesPythonOpenCvOnARealImageNetJpeg) {
  const std::optional<fs::path> shared = ptq::testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is not present: skipping the real ImageNet JPEG check";
  for (const char* name : {"n01440764_tench.JPEG", "n01630670_common_newt.JPEG"}) {
    const fs::path image = *shared / "data" / "imagenet-sample" / "val" / name;
    const PreprocessSpec spec;
    const float diff = MaxAbsDiff(Preprocess(ptq::testing::ReadFileBytes(image), spec), PythonReference(image, spec));
    EXPECT_LE(diff, 1e-3f) << name;
  }
}

}  // namespace
}  // namespace ptq::core
