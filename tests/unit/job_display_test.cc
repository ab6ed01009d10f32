// ptq-client's progress line: the rate and the time left, from hand-computed values.
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

}  // namespace
}  // namespace ptq::client
