// core::RunPipeline on a real model and real images: the walk from model file to published
// result directory, its stages in order, and nothing left behind when it fails or is cancelled.
#include "ptq/core/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <vector>

#include "fashion_mnist_spec.h"
#include "nlohmann/json.hpp"
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
