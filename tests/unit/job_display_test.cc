// ptq-client's job display: the progress line's rate and time left, from hand-computed values,
// and `status`'s summary.
#include "job_display.h"

#include <gtest/gtest.h>

namespace ptq::client {
namespace {

TEST(RateAndEtaTest, RateOfTheStepsSeenAndTimeForTheRest) {
  // 8 steps in 2.5 s: 3.2 steps/s; 32 left take 10 s.
  EXPECT_EQ(RateAndEta(8, 32, "steps", 2.5), "3.2 steps/s, ETA 00:10");
  // 150 images in 0.6 s: 250/s; 15,000 left take 60 s.
  EXPECT_EQ(RateAndEta(150, 15000, "images", 0.6), "250.0 images/s, ETA 01:00");
  // Nothing left.
  EXPECT_EQ(RateAndEta(5, 0, "steps", 1.0), "5.0 steps/s, ETA 00:00");
  // No rate yet: nothing seen, or too soon to say.
  EXPECT_EQ(RateAndEta(0, 10, "steps", 5.0), "");
  EXPECT_EQ(RateAndEta(3, 10, "steps", 0.2), "");
}

TEST(JobSummaryTest, SaysTheTenantOnlyWhenNotDefaultAndWhoseCalibrationAJobReuses) {
  v1::Job job;
  job.set_job_id("job-00000000000000bb");
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_tenant("default");
  job.mutable_config()->mutable_model()->set_model_id("abc");
  job.mutable_config()->mutable_ptq()->set_activation_quantizer("PercentileQuantizer");
  job.mutable_config()->mutable_ptq()->set_weight_quantizer("PerChannelAbsmaxQuantizer");
  EXPECT_EQ(JobSummary(job),
            "job:      job-00000000000000bb\nstate:    QUEUED\nmodel:    abc\n"
            "ptq:      PercentileQuantizer, PerChannelAbsmaxQuantizer\ncreated:  1970-01-01T00:00:00Z\n");
  job.set_tenant("team-a");
  job.mutable_config()->mutable_calibration()->set_from_job("job-00000000000000aa");
  EXPECT_EQ(JobSummary(job),
            "job:      job-00000000000000bb\nstate:    QUEUED\ntenant:   team-a\nmodel:    abc\n"
            "ptq:      PercentileQuantizer, PerChannelAbsmaxQuantizer (calibration of job-00000000000000aa)\n"
            "created:  1970-01-01T00:00:00Z\n");
}

}  // namespace
}  // namespace ptq::client
