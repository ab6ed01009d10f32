// WorkQueue: FIFO items on one worker per device, removal of queued items, drain and stop.
#include "work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ptq::server {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueueTest, OneWorkerRunsItemsInOrderOnItsDeviceAndRemovedOnesNever) {
  WorkQueue queue({"cpu"}, 0);
  std::mutex mutex;
  std::vector<std::string> ran;
  std::atomic<bool> release{false};
  auto record = [&](const std::string& name) {
    return [&, name](const std::string& device) {
      if (name == "first") {
        while (!release) std::this_thread::sleep_for(1ms);
      }
      std::lock_guard<std::mutex> lock(mutex);
      ran.push_back(name + "@" + device);
    };
  };
  // Queued before the workers start: nothing runs until Start, so the removal is certain.
  ASSERT_TRUE(queue.Push("job-a", record("first")));
  ASSERT_TRUE(queue.Push("job-b", record("removed")));
  ASSERT_TRUE(queue.Push("", record("second")));
  queue.Remove("job-b");
  queue.Start();
  release = true;
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    return ran.size();
  };
  for (int i = 0; i < 1000 && count() < 2; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(50ms);  // the removed item, were it still queued, would run now
  queue.Stop();
  EXPECT_EQ(ran, (std::vector<std::string>{"first@cpu", "second@cpu"}));
}

TEST(WorkQueueTest, DrainWaitsForTheRunningItemsUpToTheGraceAndThenRefusesWork) {
  WorkQueue queue({"cpu", "cpu"}, 0);
  queue.Start();
  std::atomic<bool> started{false}, release{false}, queued_ran{false};
  ASSERT_TRUE(queue.Push("long", [&](const std::string&) {
    started = true;
    while (!release) std::this_thread::sleep_for(1ms);
  }));
  while (!started) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(queue.accepting());
  EXPECT_FALSE(queue.Drain(50ms)) << "the running item outlasted the grace";
  EXPECT_FALSE(queue.accepting());
  EXPECT_FALSE(queue.Push("late", [&](const std::string&) { queued_ran = true; }));
  release = true;
  EXPECT_TRUE(queue.Drain(10s));
  queue.Stop();
  EXPECT_FALSE(queued_ran);
}

}  // namespace
}  // namespace ptq::server
