#include "ptq/core/dataset.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "data/idx_dataset.h"
#include "data/imagenet_folder.h"
#include "ptq/core/batch.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;
using ptq::testing::TempDir;

// A small ImageNet-layout folder built from the committed JPEG: `count` copies, label i % 3.
fs::path MakeImageNetFolder(const fs::path& root, int count, const std::string& extra_lines = "") {
  fs::create_directories(root / "val");
  std::ofstream list(root / "val_list.txt");
  for (int i = 0; i < count; ++i) {
    const std::string name = "val/img" + std::to_string(i) + ".jpg";
    fs::copy_file(ptq::testing::TestDataDir() / "texture_120x90.jpg", root / name);
    list << name << " " << i % 3 << "\n";
  }
  list << extra_lines;
  return root;
}

DataSpec SmallSpec(const fs::path& path, int batch_size) {
  DataSpec spec;
  spec.path = path.string();
  spec.preprocess.size = 32;
  spec.preprocess.resize_short = 36;
  spec.batch_size = batch_size;
  return spec;
}

// Drains a source, checking batch shapes, and returns all labels in order.
std::vector<int32_t> DrainLabels(BatchSource& source, const std::vector<int64_t>& sample_shape,
                                 std::vector<int64_t>* batch_sizes) {
  std::vector<int32_t> labels;
  Batch batch;
  while (true) {
    absl::StatusOr<bool> more = source.Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    EXPECT_EQ(std::vector<int64_t>(batch.shape.begin() + 1, batch.shape.end()), sample_shape);
    EXPECT_EQ(static_cast<int64_t>(batch.data.size()),
              batch.size() * sample_shape[0] * sample_shape[1] * sample_shape[2]);
    batch_sizes->push_back(batch.size());
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  }
  return labels;
}

TEST(ImageListTest, ParsesLinesAndSkipsBlanks) {
  absl::StatusOr<std::vector<ListedImage>> images =
      ParseImageList("val/a.jpg 3\n\nval/b.jpg\t7\r\n", "list", 10);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[1].relative_path, "val/b.jpg");
  EXPECT_EQ((*images)[1].label, 7);
  EXPECT_EQ((*images)[1].line, 3);
}

TEST(ImageListTest, ErrorsNameTheLine) {
  const struct {
    const char* text;
    const char* expected;
  } cases[] = {
      {"val/a.jpg 1\nval/b.jpg\n", "list line 2: expected \"FILE LABEL\""},
      {"val/a.jpg one\n", "list line 1: expected"},
      {"val/a.jpg 1\nval/b.jpg 10\n", "list line 2: label 10 is outside [0, 10)"},
      {"val/a.jpg -1\n", "list line 1: label -1"},
      {"../secret.jpg 1\n", "list line 1: \"../secret.jpg\" leaves the dataset folder"},
      {"/etc/passwd 1\n", "leaves the dataset folder"},
  };
  for (const auto& c : cases) {
    absl::Status status = ParseImageList(c.text, "list", 10).status();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.text;
    EXPECT_NE(status.message().find(c.expected), absl::string_view::npos) << status;
  }
}

TEST(ImageNetDatasetTest, YieldsBatchesInListOrderWithALimit) {
  TempDir dir;
  DataSpec spec = SmallSpec(MakeImageNetFolder(dir.path() / "ds", 11), 4);
  absl::StatusOr<std::unique_ptr<BatchSource>> source = OpenDataset(spec);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->num_images(), 11);
  EXPECT_EQ((*source)->num_batches(), 3);
  std::vector<int64_t> sizes;
  EXPECT_EQ(DrainLabels(**source, {3, 32, 32}, &sizes),
            (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1}));
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 3}));

  spec.limit = 5;
  source = OpenDataset(spec);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->num_images(), 5);
  sizes.clear();
  EXPECT_EQ(DrainLabels(**source, {3, 32, 32}, &sizes), (std::vector<int32_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 1}));
}

TEST(ImageNetDatasetTest, SameImagesGiveTheSameTensorsWhateverTheThreads) {
  TempDir dir;
  DataSpec spec = SmallSpec(MakeImageNetFolder(dir.path() / "ds", 6), 6);
  spec.decode_threads = 1;
  Batch one_thread;
  ASSERT_TRUE(*(*OpenDataset(spec))->Next(&one_thread));
  spec.decode_threads = 3;
  Batch three_threads;
  ASSERT_TRUE(*(*OpenDataset(spec))->Next(&three_threads));
  EXPECT_EQ(one_thread.data, three_threads.data);
}

TEST(ImageNetDatasetTest, CancelStopsTheNextBatch) {
  TempDir dir;
  std::atomic<bool> cancelled{false};
  DataSpec spec = SmallSpec(MakeImageNetFolder(dir.path() / "ds", 8), 2);
  spec.cancelled = &cancelled;
  std::unique_ptr<BatchSource> source = *OpenDataset(spec);
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));
  cancelled = true;
  EXPECT_TRUE(absl::IsCancelled(source->Next(&batch).status()));
}

TEST(ImageNetDatasetTest, MissingListIsNotFound) {
  TempDir dir;
  fs::create_directories(dir.path() / "empty");
  DataSpec spec = SmallSpec(dir.path() / "empty", 2);
  spec.format = DatasetFormat::kImageNet;
  absl::Status status = OpenDataset(spec).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("val_list.txt"), absl::string_view::npos);
}

// Calibration needs no labels: a folder of images without val_list.txt is every image file
// below it, in path order, unlabelled; evaluation (require_labels) still needs the list.
TEST(ImageNetDatasetTest, AFolderWithoutAListIsItsImageFilesUnlabelled) {
  TempDir dir;
  const fs::path folder = dir.path() / "plain";
  fs::create_directories(folder / "b-nested");
  for (const char* name : {"c.JPG", "a.jpg", "b-nested/x.jpeg"}) {
    fs::copy_file(ptq::testing::TestDataDir() / "texture_120x90.jpg", folder / name);
  }
  std::ofstream(folder / "notes.txt") << "not an image";
  auto loader = ImageNetFolderLoader::Open(folder, SmallSpec(folder, 2).preprocess, 0);
  ASSERT_TRUE(loader.ok()) << loader.status();
  EXPECT_EQ((*loader)->size(), 3);

  DataSpec spec = SmallSpec(folder, 2);
  auto source = OpenDataset(spec);
  ASSERT_TRUE(source.ok()) << source.status();
  std::vector<int64_t> batch_sizes;
  EXPECT_EQ(DrainLabels(**source, {3, 32, 32}, &batch_sizes), std::vector<int32_t>(3, kNoLabel));
  EXPECT_EQ(batch_sizes, (std::vector<int64_t>{2, 1}));

  spec.require_labels = true;
  absl::Status status = OpenDataset(spec).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("has no val_list.txt"), absl::string_view::npos) << status;

  // A link to an image outside the confinement root is refused, as a listed one would be.
  TempDir outside;
  fs::copy_file(ptq::testing::TestDataDir() / "texture_120x90.jpg", outside.path() / "secret.jpg");
  fs::create_symlink(outside.path() / "secret.jpg", folder / "d.jpg");
  spec = SmallSpec(folder, 2);
  spec.confine_to = folder.string();
  status = OpenDataset(spec).status();
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
}

TEST(ImageNetDatasetTest, MissingListedFileNamesFileAndLine) {
  TempDir dir;
  const fs::path root = MakeImageNetFolder(dir.path() / "ds", 2, "val/ghost.jpg 1\n");
  absl::Status status = OpenDataset(SmallSpec(root, 2)).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("line 3: 'val/ghost.jpg' does not exist"), absl::string_view::npos)
      << status;
}

TEST(ImageNetDatasetTest, LabelOutOfRangeNamesTheLine) {
  TempDir dir;
  DataSpec spec = SmallSpec(MakeImageNetFolder(dir.path() / "ds", 3), 2);
  spec.num_classes = 2;  // labels go up to 2
  absl::Status status = OpenDataset(spec).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("line 3: label 2 is outside [0, 2)"), absl::string_view::npos)
      << status;
}

TEST(ImageNetDatasetTest, FileThatIsNotAnImageFailsItsBatchNamingIt) {
  TempDir dir;
  const fs::path root = MakeImageNetFolder(dir.path() / "ds", 3, "val/notes.jpg 0\n");
  std::ofstream(root / "val" / "notes.jpg") << "this is text, not a JPEG";
  std::unique_ptr<BatchSource> source = *OpenDataset(SmallSpec(root, 2));
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));  // images 0 and 1 are fine
  absl::Status status = source->Next(&batch).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("notes.jpg' (val_list.txt line 4) is not an image"),
            absl::string_view::npos)
      << status;
}

// Regression: server-side images were decoded by cv::imread before their size was known.
TEST(ImageNetDatasetTest, ImagesOverThePixelCapAreRefusedBeforeDecoding) {
  TempDir dir;
  const fs::path root = MakeImageNetFolder(dir.path() / "ds", 1, "val/huge.png 0\n");
  // A PNG signature and an IHDR chunk declaring 20000 x 20000 RGB pixels; no image data.
  const std::string ihdr_payload = std::string("IHDR") + std::string("\0\0\x4e\x20\0\0\x4e\x20\x08\x02\0\0\0", 13);
  std::ofstream(root / "val" / "huge.png", std::ios::binary)
      << std::string("\x89PNG\r\n\x1a\n\0\0\0\x0d", 12) << ihdr_payload << std::string(4, '\0');
  std::unique_ptr<BatchSource> source = *OpenDataset(SmallSpec(root, 1));
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));  // the JPEG
  absl::Status status = source->Next(&batch).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("huge.png' (val_list.txt line 2) is 20000x20000 pixels by its header"),
            absl::string_view::npos)
      << status;
}

TEST(ImageNetDatasetTest, RealImageNetSampleInListOrder) {
  const std::optional<fs::path> shared = ptq::testing::SharedDir();
  if (!shared) GTEST_SKIP() << "../shared is not present: skipping the imagenet-sample check";
  DataSpec spec;
  spec.path = (*shared / "data" / "imagenet-sample").string();
  spec.num_classes = 1000;
  spec.limit = 40;
  spec.batch_size = 16;
  absl::StatusOr<std::unique_ptr<BatchSource>> source = OpenDataset(spec);
  ASSERT_TRUE(source.ok()) << source.status();
  std::vector<int64_t> sizes;
  const std::vector<int32_t> labels = DrainLabels(**source, {3, 224, 224}, &sizes);
  // One image per class, listed in class order: the first 40 labels are 0..39.
  std::vector<int32_t> expected(40);
  for (int i = 0; i < 40; ++i) expected[i] = i;
  EXPECT_EQ(labels, expected);
  EXPECT_EQ(sizes, (std::vector<int64_t>{16, 16, 8}));
}

TEST(IdxDatasetTest, FashionMnistCountsAndFirstLabels) {
  const fs::path root = ptq::testing::FashionMnistDir();
  absl::StatusOr<std::vector<uint8_t>> train = ReadIdxLabels((root / "train-labels-idx1-ubyte.gz").string());
  ASSERT_TRUE(train.ok()) << train.status() << " (is dataset-fashion-mnist installed?)";
  EXPECT_EQ(train->size(), 60000u);
  EXPECT_EQ(std::vector<uint8_t>(train->begin(), train->begin() + 10),
            (std::vector<uint8_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  absl::StatusOr<IdxImages> test_images = ReadIdxImages((root / "t10k-images-idx3-ubyte.gz").string());
  ASSERT_TRUE(test_images.ok()) << test_images.status();
  EXPECT_EQ(test_images->count, 10000);
  EXPECT_EQ(test_images->rows, 28);
  EXPECT_EQ(test_images->cols, 28);

  DataSpec spec;
  spec.path = (root / "t10k").string();  // prefix form
  spec.num_classes = 10;
  spec.preprocess.size = 28;
  spec.preprocess.resize_short = 0;
  spec.preprocess.channels = 1;
  spec.preprocess.mean = {0};
  spec.preprocess.std = {1};
  spec.batch_size = 10;
  absl::StatusOr<std::unique_ptr<BatchSource>> source = OpenDataset(spec);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->num_images(), 10000);
  Batch batch;
  ASSERT_TRUE(*(*source)->Next(&batch));
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  // With mean 0 and std 1 at the native size, the tensor holds the raw pixels.
  for (int i = 0; i < 28 * 28; ++i) {
    ASSERT_EQ(batch.data[i], test_images->pixels[i]) << "pixel " << i;
  }
}

TEST(IdxDatasetTest, GrayIsReplicatedAndResizedForColorModels) {
  DataSpec spec;
  spec.path = (ptq::testing::FashionMnistDir() / "t10k-images-idx3-ubyte.gz").string();
  spec.preprocess.size = 32;
  spec.preprocess.resize_short = 0;
  spec.batch_size = 2;
  spec.limit = 2;
  std::unique_ptr<BatchSource> source = *OpenDataset(spec);
  Batch batch;
  ASSERT_TRUE(*source->Next(&batch));
  EXPECT_EQ(batch.shape, (std::vector<int64_t>{2, 3, 32, 32}));
  // Same gray level in every channel, normalized with each channel's own mean/std.
  const int plane = 32 * 32;
  const PreprocessSpec& p = spec.preprocess;
  for (int i = 0; i < plane; i += 37) {
    const float gray = batch.data[i] * p.std[0] + p.mean[0];
    EXPECT_NEAR(batch.data[plane + i] * p.std[1] + p.mean[1], gray, 1e-3);
    EXPECT_NEAR(batch.data[2 * plane + i] * p.std[2] + p.mean[2], gray, 1e-3);
  }
}

// Writes a raw (not gzipped) IDX images file with the given magic and `count` 2x2 images.
void WriteIdx(const fs::path& path, uint32_t magic, std::vector<uint32_t> dims, size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  auto put32 = [&out](uint32_t v) {
    const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                           static_cast<char>(v >> 8), static_cast<char>(v)};
    out.write(bytes, 4);
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  out << std::string(data_bytes, '\x01');
}

TEST(IdxDatasetTest, RawFilesWorkAndCorruptOnesAreNamed) {
  TempDir dir;
  WriteIdx(dir.path() / "x-images-idx3-ubyte", 0x803, {3, 2, 2}, 12);
  WriteIdx(dir.path() / "x-labels-idx1-ubyte", 0x801, {3}, 3);
  absl::StatusOr<IdxImages> images = ReadIdxImages((dir.path() / "x-images-idx3-ubyte").string());
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(images->count, 3);
  // With a limit only the first images are read (calibration takes the first N).
  absl::StatusOr<IdxImages> first_two = ReadIdxImages((dir.path() / "x-images-idx3-ubyte").string(), 2);
  ASSERT_TRUE(first_two.ok()) << first_two.status();
  EXPECT_EQ(first_two->count, 2);
  EXPECT_EQ(first_two->in_file, 3);
  EXPECT_EQ(first_two->pixels.size(), 8u);

  WriteIdx(dir.path() / "bad-images-idx3-ubyte", 0x801, {3, 2, 2}, 12);
  absl::Status bad_magic = ReadIdxImages((dir.path() / "bad-images-idx3-ubyte").string()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad_magic));
  EXPECT_NE(bad_magic.message().find("bad-images-idx3-ubyte': magic number 0x00000801, expected 0x00000803"),
            absl::string_view::npos)
      << bad_magic;

  WriteIdx(dir.path() / "short-images-idx3-ubyte", 0x803, {3, 2, 2}, 11);
  absl::Status truncated = ReadIdxImages((dir.path() / "short-images-idx3-ubyte").string()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(truncated));
  EXPECT_NE(truncated.message().find("truncated"), absl::string_view::npos) << truncated;

  WriteIdx(dir.path() / "y-images-idx3-ubyte", 0x803, {3, 2, 2}, 12);
  WriteIdx(dir.path() / "y-labels-idx1-ubyte", 0x801, {2}, 2);
  DataSpec spec;
  spec.path = (dir.path() / "y").string();
  spec.format = DatasetFormat::kIdx;
  absl::Status mismatch = OpenDataset(spec).status();
  EXPECT_TRUE(absl::IsInvalidArgument(mismatch));
  EXPECT_NE(mismatch.message().find("has 2 labels for 3 images"), absl::string_view::npos) << mismatch;

  spec.path = (dir.path() / "nothing").string();
  EXPECT_TRUE(absl::IsNotFound(OpenDataset(spec).status()));
}

// Regression: a header declaring 1e9 images of 65535 x 65535 made the reader allocate what
// the header promised before finding the file short.
TEST(IdxDatasetTest, HeadersPromisingMoreThanTheFileHoldsAreRefusedCheaply) {
  TempDir dir;
  WriteIdx(dir.path() / "huge-images-idx3-ubyte", 0x803, {1000000000, 65535, 65535}, 64);
  absl::Status huge = ReadIdxImages((dir.path() / "huge-images-idx3-ubyte").string()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(huge));
  EXPECT_NE(huge.message().find("items of 65535 x 65535 bytes"), absl::string_view::npos) << huge;
  // Found by fuzz_idx: sizes of 2^32 - 1 overflowed the item size before it was checked.
  WriteIdx(dir.path() / "max-images-idx3-ubyte", 0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, 64);
  absl::Status max = ReadIdxImages((dir.path() / "max-images-idx3-ubyte").string()).status();
  EXPECT_NE(max.message().find("items of 4294967295 bytes"), absl::string_view::npos) << max;
  // Found by fuzz_idx: a zero size divided the next bound check by zero.
  WriteIdx(dir.path() / "empty-images-idx3-ubyte", 0x803, {3, 0, 7}, 0);
  absl::Status empty = ReadIdxImages((dir.path() / "empty-images-idx3-ubyte").string()).status();
  EXPECT_NE(empty.message().find("items of 0 bytes; 1 to"), absl::string_view::npos) << empty;
  WriteIdx(dir.path() / "many-images-idx3-ubyte", 0x803, {1000000000, 4096, 4096}, 64);
  absl::Status many = ReadIdxImages((dir.path() / "many-images-idx3-ubyte").string()).status();
  EXPECT_NE(many.message().find("truncated: 64 data bytes"), absl::string_view::npos) << many;
}

// Regression: a symlink below the dataset path a client names was followed out of the data
// root, for IDX files and for val_list.txt entries alike.
TEST(DatasetConfinementTest, FilesLinkingOutsideTheRootAreRefused) {
  TempDir outside, root;
  WriteIdx(outside.path() / "secret-images-idx3-ubyte", 0x803, {3, 2, 2}, 12);
  WriteIdx(outside.path() / "secret-labels-idx1-ubyte", 0x801, {3}, 3);
  fs::create_directories(root.path() / "evil");
  fs::create_symlink(outside.path() / "secret-images-idx3-ubyte", root.path() / "evil" / "train-images-idx3-ubyte");
  fs::create_symlink(outside.path() / "secret-labels-idx1-ubyte", root.path() / "evil" / "train-labels-idx1-ubyte");
  DataSpec idx = SmallSpec(root.path() / "evil" / "train", 2);
  idx.format = DatasetFormat::kIdx;
  EXPECT_TRUE(OpenDataset(idx).ok()) << "unconfined, as the engine's own tools use it";
  idx.confine_to = root.path().string();
  absl::Status status = OpenDataset(idx).status();
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_NE(status.message().find("train-images-idx3-ubyte' leads outside the server's data root"),
            absl::string_view::npos)
      << status;

  MakeImageNetFolder(root.path() / "imagenet", 2, "val/link.jpg 1\n");
  fs::copy_file(ptq::testing::TestDataDir() / "texture_120x90.jpg", outside.path() / "private.jpg");
  fs::create_symlink(outside.path() / "private.jpg", root.path() / "imagenet" / "val" / "link.jpg");
  DataSpec imagenet = SmallSpec(root.path() / "imagenet", 2);
  imagenet.confine_to = root.path().string();
  status = OpenDataset(imagenet).status();
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_NE(status.message().find("val_list.txt line 3: '"), absl::string_view::npos) << status;
  // Links that stay inside the root are fine.
  fs::remove(root.path() / "imagenet" / "val" / "link.jpg");
  fs::create_symlink(root.path() / "imagenet" / "val" / "img0.jpg", root.path() / "imagenet" / "val" / "link.jpg");
  EXPECT_TRUE(OpenDataset(imagenet).ok());
}

TEST(DatasetFormatTest, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseDatasetFormat("", "calibration.format"), DatasetFormat::kAuto);
  EXPECT_EQ(*ParseDatasetFormat("ImageNet", "calibration.format"), DatasetFormat::kImageNet);
  EXPECT_EQ(*ParseDatasetFormat("idx", "calibration.format"), DatasetFormat::kIdx);
  absl::Status status = ParseDatasetFormat("coco", "calibration.format").status();
  EXPECT_NE(status.message().find("calibration.format"), absl::string_view::npos);
}

}  // namespace
}  // namespace ptq::core
