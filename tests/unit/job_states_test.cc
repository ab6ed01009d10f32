#include "job_states.h"

#include <gtest/gtest.h>

namespace ptq::server {
namespace {

TEST(JobStatesTest, NamesDropOnlyThePrefix) {
  EXPECT_EQ(StateName(v1::JOB_STATE_CALIBRATING), "CALIBRATING");
  EXPECT_EQ(StateName(v1::JOB_STATE_AWAITING_DATA), "AWAITING_DATA");
  EXPECT_TRUE(IsFinalState(v1::JOB_STATE_CANCELLED));
  EXPECT_FALSE(IsFinalState(v1::JOB_STATE_AWAITING_DATA));
  EXPECT_TRUE(IsRunningState(v1::JOB_STATE_EXPORTING));
  EXPECT_FALSE(IsRunningState(v1::JOB_STATE_QUEUED));
}

}  // namespace
}  // namespace ptq::server
