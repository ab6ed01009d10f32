#ifndef PTQ_SERVER_TASK_POOL_H_
#define PTQ_SERVER_TASK_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ptq::server {

// A few threads for work that must not run on gRPC's callback threads (hashing and loading an
// uploaded model with LibTorch can take seconds). Tasks run in the order they were posted.
class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();  // Stop()s
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Post(std::function<void()> task);
  // Runs every task already posted, then joins the threads. Later Posts run inline.
  void Stop();

 private:
  void RunWorker();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_TASK_POOL_H_
