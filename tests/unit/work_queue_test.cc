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
    return [&, name](const WorkQueue::Worker& worker) {
      const std::string& device = worker.device();
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
  ASSERT_TRUE(queue.Push("long", [&](const WorkQueue::Worker&) {
    started = true;
    while (!release) std::this_thread::sleep_for(1ms);
  }));
  while (!started) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(queue.accepting());
  EXPECT_FALSE(queue.Drain(50ms)) << "the running item outlasted the grace";
  EXPECT_FALSE(queue.accepting());
  EXPECT_FALSE(queue.Push("late", [&](const WorkQueue::Worker&) { queued_ran = true; }));
  release = true;
  EXPECT_TRUE(queue.Drain(10s));
  queue.Stop();
  EXPECT_FALSE(queued_ran);
}

TEST(WorkQueueTest, StalledNamesABusyWorkerSilentPastTheLimitUntilItBeatsOrEnds) {
  WorkQueue queue({"cuda:0"}, 0);
  queue.Start();
  EXPECT_TRUE(queue.Stalled(0ms).empty()) << "an idle worker is never stalled";
  std::atomic<bool> started{false}, beat{false}, beaten{false}, release{false};
  ASSERT_TRUE(queue.Push("job-a", [&](const WorkQueue::Worker& worker) {
    started = true;
    while (!beat) std::this_thread::sleep_for(1ms);
    worker.Beat();
    beaten = true;
    while (!release) std::this_thread::sleep_for(1ms);
  }));
  while (!started) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(300ms);
  const std::vector<StalledWorker> stalled = queue.Stalled(200ms);
  ASSERT_EQ(stalled.size(), 1u);
  EXPECT_EQ(stalled[0].device, "cuda:0");
  EXPECT_EQ(stalled[0].key, "job-a");
  EXPECT_TRUE(queue.Stalled(10s).empty()) << "silent for less than the limit";
  beat = true;
  while (!beaten) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(queue.Stalled(200ms).empty()) << "a beat restarts the silence";
  release = true;
  queue.Stop();
  EXPECT_TRUE(queue.Stalled(0ms).empty()) << "the item ended";
}

}  // namespace
}  // namespace ptq::server
