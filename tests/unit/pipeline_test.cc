// core::RunPipeline on a real model and real images: the walk from model file to published
// result directory, its stages in order, and nothing left behind when it fails or is cancelled.
#include "ptq/core/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <vector>

#include "fashion_mnist_spec.h"
#include "nlohmann/json.hpp"
#include "ptq/common/build_info.h"
#include "ptq/common/sha256.h"
#include "ptq/core/devices.h"
#include "test_env.h"

namespace ptq::core {
namespace {

namespace fs = std::filesystem;

DataSpec FashionSpec(const std::string& split, int64_t limit) {
  DataSpec spec = testing::FashionMnistSpec(split, limit);
  spec.batch_size = 16;
  return spec;
}

PipelineJob FashionJob() {
  PipelineJob job;
  job.model_path = (testing::ReferenceModelsDir() / "mobilenet_v3_small.pt").string();
  job.ptq.backend = "qnnpack";
  job.open_calibration = [] { return OpenDataset(FashionSpec("train", 48)); };
  job.calibration_batches = 3;
  job.evaluation = FashionSpec("t10k", 200);
  job.config_json = R"({"name": "pipeline-test"})";
  return job;
}

struct Stage {
  PipelineStage stage;
  int64_t total;
  std::string unit;
};

TEST(PipelineTest, CalibratesExportsEvaluatesAndPublishesInOrder) {
  testing::TempDir dir;
  const fs::path staging = dir.path() / ".staging-job", destination = dir.path() / "job";
  std::vector<Stage> stages;
  int64_t progress_calls = 0;
  PipelineCallbacks callbacks;
  callbacks.enter_stage = [&](PipelineStage stage, int64_t total, const std::string& unit) {
    stages.push_back({stage, total, unit});
  };
  callbacks.progress = [&](int64_t, int64_t) { ++progress_calls; };
  absl::StatusOr<PipelineResult> result = RunPipeline(FashionJob(), staging.string(), destination.string(), callbacks);
  ASSERT_TRUE(result.ok()) << result.status();

  ASSERT_EQ(stages.size(), 3u);
  EXPECT_EQ(stages[0].stage, PipelineStage::kCalibrating);
  EXPECT_EQ(stages[0].total, 3);
  EXPECT_EQ(stages[1].stage, PipelineStage::kExporting);
  EXPECT_EQ(stages[2].stage, PipelineStage::kEvaluating);
  EXPECT_EQ(stages[2].total, 200);
  EXPECT_EQ(stages[2].unit, "images");
  EXPECT_GT(progress_calls, 3);

  EXPECT_FALSE(fs::exists(staging));
  EXPECT_TRUE(fs::exists(destination / kInt8ModelFile));
  EXPECT_TRUE(fs::exists(destination / kFp32ModelFile));
  ASSERT_EQ(result->metrics.size(), 3u);
  EXPECT_EQ(result->metrics[2].variant, "int8");
  EXPECT_EQ(result->metrics[2].count, 200);
  EXPECT_EQ(result->metrics[2].engine, "qnnpack");
  EXPECT_GT(result->timings.total_seconds, result->timings.calibration_seconds);
  EXPECT_NE(result->session, nullptr);
  bool listed = false;
  for (const ManifestEntry& entry : result->artifacts) listed = listed || entry.path == kInt8ModelFile;
  EXPECT_TRUE(listed);

  const nlohmann::json report = nlohmann::json::parse(testing::ReadFileBytes(destination / "report.json"));
  EXPECT_EQ(report["config"]["name"], "pipeline-test");
  EXPECT_EQ(report["int8_engine"], "qnnpack");
  EXPECT_EQ(report["metrics"][2]["count"], 200);
}

// SHA-256 over every batch of `spec`: its shape as four little-endian int64, then its floats.
std::string ExpectedFingerprint(const DataSpec& spec) {
  absl::StatusOr<std::unique_ptr<BatchSource>> source = OpenDataset(spec);
  EXPECT_TRUE(source.ok()) << source.status();
  if (!source.ok()) return "";
  Sha256 hash;
  Batch batch;
  for (absl::StatusOr<bool> more = (*source)->Next(&batch); more.ok() && *more; more = (*source)->Next(&batch)) {
    hash.Update(absl::string_view(reinterpret_cast<const char*>(batch.shape.data()), 4 * sizeof(int64_t)));
    hash.Update(absl::string_view(reinterpret_cast<const char*>(batch.data.data()), batch.data.size() * sizeof(float)));
  }
  return hash.HexDigest();
}

TEST(PipelineTest, ReportRecordsTheSoftwareTheModelAndTheCalibrationImages) {
  testing::TempDir dir;
  PipelineJob job = FashionJob();
  job.evaluation.reset();
  const auto provenance_of = [&](const PipelineJob& run, const std::string& name) {
    const fs::path destination = dir.path() / name;
    EXPECT_TRUE(RunPipeline(run, (dir.path() / (".staging-" + name)).string(), destination.string(), {}).ok());
    return nlohmann::json::parse(testing::ReadFileBytes(destination / "report.json"))["provenance"];
  };
  const nlohmann::json first = provenance_of(job, "first");
  EXPECT_EQ(first["ptq_version"], std::string(Version()));
  EXPECT_EQ(first["commit"], std::string(BuildCommit()));
  EXPECT_EQ(first["libtorch"], LibTorchVersion());
  EXPECT_EQ(first["onednn"], OnednnVersion());
  EXPECT_EQ(first["model_sha256"], *Sha256OfFile(job.model_path));
  EXPECT_EQ(first["calibration_images"], 48);
  EXPECT_EQ(first["calibration_fingerprint"], ExpectedFingerprint(FashionSpec("train", 48)));

  // The same images again: the same fingerprint; other images: another.
  EXPECT_EQ(provenance_of(job, "again")["calibration_fingerprint"], first["calibration_fingerprint"]);
  job.open_calibration = [] { return OpenDataset(FashionSpec("t10k", 48)); };
  EXPECT_NE(provenance_of(job, "other")["calibration_fingerprint"], first["calibration_fingerprint"]);
}

TEST(PipelineTest, FailuresNameTheirStageAndLeaveNothing) {
  testing::TempDir dir;
  const fs::path staging = dir.path() / ".staging-job", destination = dir.path() / "job";

  PipelineJob missing_model = FashionJob();
  missing_model.model_path = (dir.path() / "absent.pt").string();
  absl::Status status = RunPipeline(missing_model, staging.string(), destination.string(), {}).status();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind("loading the model: ", 0), 0u) << status;

  PipelineJob bad_evaluation = FashionJob();
  bad_evaluation.evaluation->path = (dir.path() / "no-such-dataset").string();
  status = RunPipeline(bad_evaluation, staging.string(), destination.string(), {}).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_EQ(status.message().rfind("opening the evaluation data: ", 0), 0u) << status;

  std::atomic<bool> cancelled{false};
  PipelineCallbacks cancel_on_export;
  cancel_on_export.cancelled = &cancelled;
  cancel_on_export.enter_stage = [&](PipelineStage stage, int64_t, const std::string&) {
    if (stage == PipelineStage::kExporting) cancelled = true;
  };
  status = RunPipeline(FashionJob(), staging.string(), destination.string(), cancel_on_export).status();
  EXPECT_TRUE(absl::IsCancelled(status)) << status;

  EXPECT_FALSE(fs::exists(staging));
  EXPECT_FALSE(fs::exists(destination));
}

}  // namespace
}  // namespace ptq::core
