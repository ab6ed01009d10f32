// calibration.from_job on the server: what a reusing job takes from the earlier one, what it
// may change, and what it is refused.
#include "calibration_reuse.h"

#include <gtest/gtest.h>

#include "job_config.h"

namespace ptq::server {
namespace {

// A SUCCEEDED job's config as the server stores it: every default resolved.
v1::Job Earlier() {
  v1::Job job;
  job.set_job_id("job-00000000000000aa");
  v1::JobConfig* config = job.mutable_config();
  config->mutable_model()->set_model_id(std::string(64, 'a'));
  v1::InputSpec* input = config->mutable_input();
  input->set_size(32);
  input->set_resize_short(0);
  for (int c = 0; c < 3; ++c) {
    input->add_mean(72.94f);
    input->add_std(90.02f);
  }
  input->set_color_order("RGB");
  config->mutable_calibration()->set_source("server");
  config->mutable_calibration()->set_path("fashion-mnist/train");
  config->mutable_calibration()->set_quant_batch_num(4);
  config->mutable_calibration()->set_quant_batch_size(32);
  (void)ResolveJobConfig(config, "").status();  // fills the ptq defaults (the dataset is not there)
  v1::PtqSpec* ptq = config->mutable_ptq();
  ptq->set_activation_quantizer("HistQuantizer");
  ptq->set_skip_se_quant(true);
  ptq->add_skip_layers("classifier.3");
  ptq->set_sensitivity(true);
  return job;
}

v1::JobConfig Reusing() {
  v1::JobConfig config;
  config.mutable_calibration()->set_from_job("job-00000000000000aa");
  return config;
}

TEST(InheritCalibrationTest, UnsetKeysComeFromTheEarlierJobAndThePlanMayChange) {
  const v1::Job earlier = Earlier();
  v1::JobConfig config = Reusing();
  config.mutable_ptq()->set_backend("qnnpack");
  config.mutable_ptq()->add_skip_layers("features.0.0");
  ASSERT_TRUE(InheritCalibration(earlier, &config).ok());
  EXPECT_EQ(config.model().model_id(), std::string(64, 'a'));
  EXPECT_EQ(config.input().size(), 32);
  EXPECT_EQ(config.ptq().activation_quantizer(), "HistQuantizer");
  EXPECT_EQ(config.ptq().hist_percent(), earlier.config().ptq().hist_percent());
  EXPECT_TRUE(config.ptq().fuse());
  EXPECT_TRUE(config.ptq().skip_se_quant());
  ASSERT_EQ(config.ptq().skip_layers_size(), 1);
  EXPECT_EQ(config.ptq().skip_layers(0), "features.0.0");  // given: replaces the earlier list
  EXPECT_EQ(config.ptq().backend(), "qnnpack");
  EXPECT_FALSE(config.ptq().has_sensitivity()) << "held-out measurements need data: never taken";
  EXPECT_EQ(config.calibration().quant_batch_num(), 4);

  absl::StatusOr<ResolvedJob> resolved = ResolveJobConfig(&config, "");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->calibration_from_job, "job-00000000000000aa");
  EXPECT_FALSE(resolved->streamed);
  EXPECT_EQ(resolved->ptq.skip_layers, std::vector<std::string>{"features.0.0"});

  // A key given with the earlier job's value is no conflict.
  v1::JobConfig same = Reusing();
  same.mutable_ptq()->set_fuse(true);
  same.mutable_ptq()->set_activation_quantizer("HistQuantizer");
  EXPECT_TRUE(InheritCalibration(earlier, &same).ok());
  EXPECT_EQ(same.ptq().skip_layers_size(), 1);
  EXPECT_EQ(same.ptq().skip_layers(0), "classifier.3");  // not given: the earlier list
}

TEST(InheritCalibrationTest, WhatDecidedTheRangesCannotChange) {
  const v1::Job earlier = Earlier();
  const auto refused = [&](const std::function<void(v1::JobConfig&)>& change) {
    v1::JobConfig config = Reusing();
    change(config);
    return InheritCalibration(earlier, &config);
  };
  absl::Status status = refused([](v1::JobConfig& c) { c.mutable_ptq()->set_fuse(false); });
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("ptq.fuse differs from job job-00000000000000aa's"), absl::string_view::npos)
      << status;
  status = refused([](v1::JobConfig& c) { c.mutable_ptq()->set_activation_quantizer("KLQuantizer"); });
  EXPECT_NE(status.message().find("ptq.activation_quantizer differs"), absl::string_view::npos) << status;
  status = refused([](v1::JobConfig& c) { c.mutable_ptq()->set_bias_correction(false); });
  EXPECT_NE(status.message().find("ptq.bias_correction differs"), absl::string_view::npos) << status;
  status = refused([](v1::JobConfig& c) { c.mutable_input()->set_size(64); });
  EXPECT_NE(status.message().find("input differs"), absl::string_view::npos) << status;
  status = refused([](v1::JobConfig& c) { c.mutable_model()->set_model_id(std::string(64, 'b')); });
  EXPECT_NE(status.message().find("model.model_id differs"), absl::string_view::npos) << status;
  // The same input written out in full is the same input.
  EXPECT_TRUE(refused([&](v1::JobConfig& c) { *c.mutable_input() = earlier.config().input(); }).ok());

  v1::Job learned = earlier;
  learned.mutable_config()->mutable_ptq()->set_weight_rounding("adaround");
  v1::JobConfig config = Reusing();
  status = InheritCalibration(learned, &config);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("adaround"), absl::string_view::npos) << status;
}

TEST(InheritCalibrationTest, AReusingConfigReadsNoDataAndMeasuresNothingHeldOut) {
  v1::JobConfig config = Reusing();
  ASSERT_TRUE(InheritCalibration(Earlier(), &config).ok());
  v1::JobConfig with_source = config;
  with_source.mutable_calibration()->set_source("server");
  absl::Status status = ResolveJobConfig(&with_source, "").status();
  EXPECT_NE(status.message().find("give one or the other"), absl::string_view::npos) << status;
  v1::JobConfig with_budget = config;
  with_budget.mutable_ptq()->set_min_agreement(99);
  status = ResolveJobConfig(&with_budget, "").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("calibration.from_job does not read"), absl::string_view::npos) << status;
  // The id also names a result directory: nothing but a job id gets there.
  v1::JobConfig escaping = config;
  escaping.mutable_calibration()->set_from_job("../../etc/passwd");
  status = ResolveJobConfig(&escaping, "").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("must be a job id"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace ptq::server
