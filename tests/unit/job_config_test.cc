#include "job_config.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "test_env.h"

namespace ptq::server {
namespace {

v1::JobConfig StreamConfig() {
  v1::JobConfig config;
  config.mutable_model()->set_model_id(std::string(64, 'a'));
  config.mutable_calibration()->set_source("stream");
  return config;
}

absl::StatusOr<ResolvedJob> Resolve(const v1::JobConfig& config) {
  v1::JobConfig copy = config;
  return ResolveJobConfig(&copy, "");
}

std::string ErrorOf(const v1::JobConfig& config) {
  v1::JobConfig copy = config;
  return std::string(ResolveJobConfig(&copy, "").status().message());
}

TEST(JobConfigTest, FillsTheSeedsDefaultsIntoTheConfig) {
  v1::JobConfig config = StreamConfig();
  absl::StatusOr<ResolvedJob> job = ResolveJobConfig(&config, "");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->streamed);
  EXPECT_EQ(job->quant_batch_num, 10);
  EXPECT_EQ(job->quant_batch_size, 10);
  EXPECT_EQ(job->ptq.activation_quantizer, "PercentileQuantizer");
  EXPECT_TRUE(job->ptq.fuse);
  EXPECT_EQ(job->ptq.backend, "onednn");
  EXPECT_EQ(job->preprocess.size, 224);
  EXPECT_FALSE(job->evaluation.has_value());
  // The stored config says what ran.
  EXPECT_EQ(config.calibration().quant_batch_num(), 10);
  EXPECT_EQ(config.ptq().activation_quantizer(), "PercentileQuantizer");
  EXPECT_TRUE(config.ptq().fuse());
  EXPECT_EQ(config.ptq().bias_correction_batches(), 2);
  EXPECT_EQ(config.ptq().weight_rounding(), "nearest");
  EXPECT_EQ(config.ptq().weight_quantizer(), "PerChannelAbsmaxQuantizer");
  EXPECT_DOUBLE_EQ(config.ptq().hist_percent(), 0.99999);
  EXPECT_TRUE(config.ptq().bias_correction());
  EXPECT_EQ(config.input().mean_size(), 3);
  EXPECT_EQ(config.input().color_order(), "RGB");
}

TEST(JobConfigTest, CarriesTheSeedsKnobsToTheEngine) {
  v1::JobConfig config = StreamConfig();
  config.mutable_ptq()->set_activation_quantizer("HistQuantizer");
  config.mutable_ptq()->set_upsample_bins(127);
  config.mutable_ptq()->set_hist_percent(0.999);
  config.mutable_ptq()->set_fuse(true);
  config.mutable_ptq()->set_skip_se_quant(true);
  v1::FuseGroup* group = config.mutable_ptq()->add_fuse_list();
  group->add_layers("conv1");
  group->add_layers("bn1");
  config.mutable_calibration()->set_quant_batch_num(10);
  config.mutable_calibration()->set_quant_batch_size(32);
  absl::StatusOr<ResolvedJob> job = ResolveJobConfig(&config, "");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->ptq.upsample_bins, 127);
  EXPECT_DOUBLE_EQ(job->ptq.hist_percent, 0.999);
  EXPECT_TRUE(job->ptq.fuse);
  EXPECT_TRUE(job->ptq.skip_se_quant);
  ASSERT_EQ(job->ptq.fuse_list.size(), 1u);
  EXPECT_EQ(job->ptq.fuse_list[0], (std::vector<std::string>{"conv1", "bn1"}));
  EXPECT_EQ(job->quant_batch_size, 32);
}

TEST(JobConfigTest, ErrorsNameTheKey) {
  v1::JobConfig config = StreamConfig();
  config.mutable_model()->clear_model_id();
  EXPECT_NE(ErrorOf(config).find("model.model_id"), std::string::npos);
  config = StreamConfig();
  config.mutable_model()->set_model_id("not-a-sha");
  EXPECT_NE(ErrorOf(config).find("model.model_id"), std::string::npos);
  config = StreamConfig();
  config.mutable_calibration()->set_quant_batch_size(0);
  EXPECT_NE(ErrorOf(config).find("calibration.quant_batch_size"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_activation_quantizer("MagicQuantizer");
  EXPECT_NE(ErrorOf(config).find("activation_quantizer"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_backend("fbgemm");
  EXPECT_NE(ErrorOf(config).find("ptq.backend"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->add_fuse_list()->add_layers("conv1");
  config.mutable_ptq()->set_fuse(true);
  EXPECT_NE(ErrorOf(config).find("ptq.fuse_list[0]"), std::string::npos);
  config = StreamConfig();
  config.mutable_input()->set_color_order("CMYK");
  EXPECT_NE(ErrorOf(config).find("input.color_order"), std::string::npos);
  config = StreamConfig();
  config.mutable_input()->add_mean(1);
  config.mutable_input()->add_mean(2);
  EXPECT_NE(ErrorOf(config).find("input."), std::string::npos);
  config = StreamConfig();
  config.mutable_calibration()->set_source("server");
  config.mutable_calibration()->set_path("imagenet");
  EXPECT_NE(ErrorOf(config).find("--data-root"), std::string::npos);
}

// What an evaluation of an uploaded model or a finished job resolves: its dataset under the
// data root, with the preprocessing given, errors named as in a job config's evaluate section.
TEST(JobConfigTest, EvaluationDataResolvesUnderTheDataRootWithTheGivenInput) {
  testing::TempDir root;
  testing::CopyFashionMnistTestSet(root.path() / "fashion");
  v1::InputSpec input;
  input.set_size(32);
  absl::StatusOr<core::PreprocessSpec> preprocess = ResolveInput(&input);
  ASSERT_TRUE(preprocess.ok()) << preprocess.status();
  EXPECT_EQ(input.color_order(), "RGB");  // defaults filled in
  absl::StatusOr<core::DataSpec> spec = ResolveEvaluationData(root.path().string(), "fashion/t10k", "", 50, *preprocess);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->limit, 50);
  EXPECT_EQ(spec->batch_size, 32);
  EXPECT_EQ(spec->preprocess.size, 32);
  EXPECT_EQ(spec->confine_to, root.path().string());

  absl::Status status = ResolveEvaluationData(root.path().string(), "fashion/t10k", "", -1, *preprocess).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status) && status.message().find("evaluate.limit") != absl::string_view::npos)
      << status;
  status = ResolveEvaluationData(root.path().string(), "fashion/t10k", "tfrecord", 0, *preprocess).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status) && status.message().find("evaluate.format") != absl::string_view::npos)
      << status;
  status = ResolveEvaluationData(root.path().string(), "../outside", "", 0, *preprocess).status();
  EXPECT_TRUE(absl::IsPermissionDenied(status) && status.message().find("evaluate.path") != absl::string_view::npos)
      << status;
  input.set_color_order("CMYK");
  EXPECT_NE(ResolveInput(&input).status().message().find("input.color_order"), absl::string_view::npos);
}

// Regressions: each of these was accepted, and the first two grew the server by gigabytes
// or broke every ListJobs page.
TEST(JobConfigTest, EveryNumberStringAndListHasABound) {
  v1::JobConfig config = StreamConfig();
  config.mutable_ptq()->set_bins(1 << 28);
  EXPECT_NE(ErrorOf(config).find("ptq.bins must be in [128, 8192]"), std::string::npos) << ErrorOf(config);
  config = StreamConfig();
  config.mutable_ptq()->set_upsample_bins(1 << 20);
  EXPECT_NE(ErrorOf(config).find("ptq.upsample_bins"), std::string::npos);
  config = StreamConfig();
  for (int i = 0; i < 1025; ++i) config.mutable_ptq()->add_skip_layers("features.0");
  EXPECT_NE(ErrorOf(config).find("ptq.skip_layers may name at most 1024"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->add_skip_layers("features.0");
  config.mutable_ptq()->add_skip_layers(std::string(30 << 20, 'x'));
  EXPECT_NE(ErrorOf(config).find("the job config is"), std::string::npos) << ErrorOf(config).substr(0, 200);
  config = StreamConfig();
  config.mutable_ptq()->add_skip_layers(std::string(300, 'x'));
  EXPECT_NE(ErrorOf(config).find("ptq.skip_layers[0] is 300 characters"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_fuse(true);
  v1::FuseGroup* group = config.mutable_ptq()->add_fuse_list();
  for (int i = 0; i < 9; ++i) group->add_layers("conv");
  EXPECT_NE(ErrorOf(config).find("ptq.fuse_list[0] may name at most 8"), std::string::npos);
  config = StreamConfig();
  config.set_output_dir(std::string(5000, 'd'));
  EXPECT_NE(ErrorOf(config).find("output_dir is 5000 characters"), std::string::npos);
  config = StreamConfig();
  config.mutable_input()->set_resize_short(2147483647);
  EXPECT_NE(ErrorOf(config).find("input.resize_short"), std::string::npos);
  config = StreamConfig();
  config.mutable_input()->add_std(std::numeric_limits<float>::infinity());
  EXPECT_NE(ErrorOf(config).find("input.std"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_bias_correction_batches(65);
  EXPECT_NE(ErrorOf(config).find("ptq.bias_correction_batches must be in [1, 64], got 65"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_adaround_iterations(0);
  EXPECT_NE(ErrorOf(config).find("ptq.adaround_iterations must be in [1, 20000], got 0"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_weight_rounding("stochastic");
  EXPECT_NE(ErrorOf(config).find("ptq.weight_rounding must be \"nearest\" or \"adaround\""), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_min_agreement(0);
  EXPECT_NE(ErrorOf(config).find("ptq.min_agreement must be a percentage in (0, 100], got 0"), std::string::npos);
  config.mutable_ptq()->set_min_agreement(std::numeric_limits<double>::quiet_NaN());
  EXPECT_NE(ErrorOf(config).find("ptq.min_agreement must be a percentage"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_max_top1_drop(-0.5);
  EXPECT_NE(ErrorOf(config).find("ptq.max_top1_drop must be in [0, 100] top-1 points, got -0.5"), std::string::npos);
  config = StreamConfig();
  config.mutable_ptq()->set_holdout_batches(65);
  EXPECT_NE(ErrorOf(config).find("ptq.holdout_batches must be in [1, 64], got 65"), std::string::npos);
}

TEST(JobConfigTest, HeldOutBatchesMustLeaveBatchesToCalibrateOn) {
  v1::JobConfig config = StreamConfig();
  config.mutable_calibration()->set_quant_batch_num(2);
  config.mutable_ptq()->set_holdout_batches(2);
  EXPECT_TRUE(Resolve(config).ok()) << "held-out batches only matter when something is measured on them";
  config.mutable_ptq()->set_sensitivity(true);
  EXPECT_NE(ErrorOf(config).find("ptq.holdout_batches (2) must leave calibration batches to calibrate on: "
                                 "calibration.quant_batch_num is 2"),
            std::string::npos)
      << ErrorOf(config);
  config.mutable_calibration()->set_quant_batch_num(3);
  absl::StatusOr<ResolvedJob> job = Resolve(config);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->ptq.sensitivity);
  EXPECT_EQ(job->ptq.holdout_batches, 2);
  EXPECT_EQ(job->ptq.min_agreement, -1);
  config.mutable_ptq()->set_sensitivity(false);
  config.mutable_ptq()->set_activation_quantizer("auto");  // chooses on the held-out batches too
  config.mutable_calibration()->set_quant_batch_num(2);
  EXPECT_NE(ErrorOf(config).find("ptq.holdout_batches (2) must leave"), std::string::npos) << ErrorOf(config);
  config.mutable_calibration()->set_quant_batch_num(3);
  config.mutable_ptq()->set_min_agreement(99.5);
  config.mutable_ptq()->set_max_top1_drop(0);
  job = Resolve(config);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->ptq.min_agreement, 99.5);
  EXPECT_EQ(job->ptq.max_top1_drop, 0);
}

// Equalization is on unless asked otherwise, and off by default for a budget (which it costs
// float layers); the stored config records what an unset key resolved to.
TEST(JobConfigTest, EqualizationDefaultsOnExceptWithABudget) {
  v1::JobConfig config = StreamConfig();
  config.mutable_calibration()->set_quant_batch_num(4);
  v1::JobConfig resolved = config;
  absl::StatusOr<ResolvedJob> job = ResolveJobConfig(&resolved, "");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->ptq.Equalizes());
  EXPECT_TRUE(resolved.ptq().has_equalize() && resolved.ptq().equalize());

  config.mutable_ptq()->set_min_agreement(98);
  resolved = config;
  job = ResolveJobConfig(&resolved, "");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->ptq.Equalizes());
  EXPECT_TRUE(resolved.ptq().has_equalize() && !resolved.ptq().equalize());

  config.mutable_ptq()->set_equalize(true);
  job = Resolve(config);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->ptq.Equalizes());
}

}  // namespace
}  // namespace ptq::server
