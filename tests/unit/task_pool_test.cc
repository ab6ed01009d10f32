#include "ptq/common/task_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ptq {
namespace {

TEST(TaskPoolTest, SingleThreadRunsTasksInPostingOrder) {
  std::vector<int> order;
  {
    TaskPool pool(1);
    for (int i = 0; i < 100; ++i) pool.Post([&order, i] { order.push_back(i); });
  }  // destructor drains
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(TaskPoolTest, StopRunsEveryPostedTaskBeforeReturning) {
  std::atomic<int> done{0};
  TaskPool pool(2);
  for (int i = 0; i < 50; ++i) {
    pool.Post([&done] {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ++done;
    });
  }
  pool.Stop();
  EXPECT_EQ(done.load(), 50);
}

TEST(TaskPoolTest, PostAfterStopRunsInline) {
  TaskPool pool(1);
  pool.Stop();
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  pool.Post([&ran_on] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, caller);
}

}  // namespace
}  // namespace ptq
