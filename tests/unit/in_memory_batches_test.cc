#include "ptq/core/in_memory_batches.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "test_env.h"

namespace ptq::core {
namespace {

PreprocessSpec TinyInput() {
  PreprocessSpec spec;
  spec.size = 4;
  spec.resize_short = 4;
  return spec;
}

std::string FloatBytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST(InMemoryBatchesTest, StoresTensorsAndReplaysThemInOrder) {
  InMemoryBatches batches(TinyInput());
  std::vector<float> first(2 * 3 * 4 * 4);
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<float>(i);
  ASSERT_TRUE(batches.AddTensor({2, 3, 4, 4}, FloatBytes(first), {5, 6}).ok());
  ASSERT_TRUE(batches.AddTensor({1, 3, 4, 4}, FloatBytes(std::vector<float>(48, -1.f)), {}).ok());
  EXPECT_EQ(batches.num_batches(), 2);
  EXPECT_EQ(batches.num_images(), 3);

  std::unique_ptr<BatchSource> source = batches.Source();
  EXPECT_EQ(source->num_images(), 3);
  EXPECT_EQ(source->num_batches(), 2);
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.data, first);
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{5, 6}));
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{kNoLabel}));
  EXPECT_FALSE(*source->Next(&batch));
}

TEST(InMemoryBatchesTest, ASpoolReloadsTheSameBatchesAndADamagedOneIsDataLoss) {
  InMemoryBatches batches(TinyInput());
  std::vector<float> first(2 * 3 * 4 * 4);
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<float>(i) / 7;
  ASSERT_TRUE(batches.AddTensor({2, 3, 4, 4}, FloatBytes(first), {5, 6}).ok());
  ASSERT_TRUE(batches.AddTensor({1, 3, 4, 4}, FloatBytes(std::vector<float>(48, -1.f)), {}).ok());
  testing::TempDir dir;
  const std::string path = (dir.path() / "job.spool").string();
  ASSERT_TRUE(batches.SpoolTo(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  absl::StatusOr<std::unique_ptr<InMemoryBatches>> loaded = InMemoryBatches::LoadSpooled(path, TinyInput());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->num_batches(), 2);
  EXPECT_EQ((*loaded)->num_images(), 3);
  std::unique_ptr<BatchSource> source = (*loaded)->Source();
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.data, first);
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{5, 6}));
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.data, std::vector<float>(48, -1.f));
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{kNoLabel}));

  // Another model input, a file cut short, something else entirely.
  PreprocessSpec larger = TinyInput();
  larger.size = 8;
  larger.resize_short = 8;
  EXPECT_TRUE(absl::IsDataLoss(InMemoryBatches::LoadSpooled(path, larger).status()));
  const std::string bytes = testing::ReadFileBytes(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  absl::Status cut = InMemoryBatches::LoadSpooled(path, TinyInput()).status();
  EXPECT_TRUE(absl::IsDataLoss(cut)) << cut;
  EXPECT_NE(cut.message().find("a batch's values"), absl::string_view::npos) << cut;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "not a spool";
  EXPECT_TRUE(absl::IsDataLoss(InMemoryBatches::LoadSpooled(path, TinyInput()).status()));
  EXPECT_TRUE(absl::IsNotFound(InMemoryBatches::LoadSpooled(path + ".missing", TinyInput()).status()));
}

TEST(InMemoryBatchesTest, LimitCutsTheLastBatch) {
  InMemoryBatches batches(TinyInput());
  ASSERT_TRUE(batches.AddTensor({3, 3, 4, 4}, FloatBytes(std::vector<float>(144, 1.f)), {}).ok());
  std::unique_ptr<BatchSource> source = batches.Source(/*limit=*/2);
  EXPECT_EQ(source->num_batches(), 1);
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.shape, (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(batch.data.size(), 96u);
  EXPECT_FALSE(*source->Next(&batch));
}

TEST(InMemoryBatchesTest, WrongShapesAndSizesAreNamed) {
  InMemoryBatches batches(TinyInput());
  absl::Status shape = batches.AddTensor({2, 3, 5, 5}, FloatBytes(std::vector<float>(150)), {});
  EXPECT_TRUE(absl::IsInvalidArgument(shape));
  EXPECT_NE(shape.message().find("tensor shape [2, 3, 5, 5] does not match the model input [N, 3, 4, 4]"),
            absl::string_view::npos)
      << shape;
  EXPECT_TRUE(absl::IsInvalidArgument(batches.AddTensor({3, 4, 4}, "", {})));
  EXPECT_TRUE(absl::IsInvalidArgument(batches.AddTensor({0, 3, 4, 4}, "", {})));
  absl::Status bytes = batches.AddTensor({1, 3, 4, 4}, std::string(10, '\0'), {});
  EXPECT_NE(bytes.message().find("10 bytes"), absl::string_view::npos) << bytes;
  absl::Status labels = batches.AddTensor({1, 3, 4, 4}, FloatBytes(std::vector<float>(48)), {1, 2});
  EXPECT_NE(labels.message().find("2 labels for 1 images"), absl::string_view::npos) << labels;
  EXPECT_EQ(batches.num_images(), 0);
}

// Regressions: NaN/Inf tensors were calibrated into a "succeeded" job, and the image count
// was not bounded before the byte count was computed from it.
TEST(InMemoryBatchesTest, NonFiniteValuesAndHugeCountsAreRefused) {
  InMemoryBatches batches(TinyInput());
  std::vector<float> values(48, 0.5f);
  values[17] = std::numeric_limits<float>::quiet_NaN();
  absl::Status nan = batches.AddTensor({1, 3, 4, 4}, FloatBytes(values), {});
  EXPECT_TRUE(absl::IsInvalidArgument(nan));
  EXPECT_NE(nan.message().find("tensor value 17 is nan"), absl::string_view::npos) << nan;
  values[17] = -std::numeric_limits<float>::infinity();
  EXPECT_NE(batches.AddTensor({1, 3, 4, 4}, FloatBytes(values), {}).message().find("is -inf"), absl::string_view::npos);
  absl::Status huge = batches.AddTensor({int64_t{1} << 60, 3, 4, 4}, FloatBytes(values), {});
  EXPECT_NE(huge.message().find("with N in [1, 4096]"), absl::string_view::npos) << huge;
  EXPECT_EQ(batches.num_images(), 0);
}

TEST(InMemoryBatchesTest, EncodedImagesAreDecodedAndBadOnesNamed) {
  std::ifstream in(ptq::testing::TestDataDir() / "texture_120x90.jpg", std::ios::binary);
  std::stringstream jpeg;
  jpeg << in.rdbuf();
  InMemoryBatches batches(TinyInput());
  ASSERT_TRUE(batches.AddEncodedImages({jpeg.str(), jpeg.str()}, {1, 2}).ok());
  absl::Status bad = batches.AddEncodedImages({jpeg.str(), "garbage"}, {});
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("image 3 of the stream"), absl::string_view::npos) << bad;
  EXPECT_EQ(batches.num_images(), 2);

  Batch batch;
  ASSERT_TRUE(*batches.Source()->Next(&batch));
  EXPECT_EQ(batch.shape, (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(std::vector<float>(batch.data.begin(), batch.data.begin() + 48),
            std::vector<float>(batch.data.begin() + 48, batch.data.end()));
}

TEST(InMemoryBatchesTest, CancelledSourceSaysSo) {
  InMemoryBatches batches(TinyInput());
  ASSERT_TRUE(batches.AddTensor({1, 3, 4, 4}, FloatBytes(std::vector<float>(48)), {}).ok());
  std::atomic<bool> cancelled{true};
  Batch batch;
  EXPECT_TRUE(absl::IsCancelled(batches.Source(0, &cancelled)->Next(&batch).status()));
}

}  // namespace
}  // namespace ptq::core
