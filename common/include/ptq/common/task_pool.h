#ifndef PTQ_COMMON_TASK_POOL_H_
#define PTQ_COMMON_TASK_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ptq {

// A fixed set of threads running posted tasks, started in the order they were posted. The
// server uses one to keep blocking work (committing uploads) off gRPC's callback threads; the
// dataset readers use one to decode images ahead of the model.
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

}  // namespace ptq

#endif  // PTQ_COMMON_TASK_POOL_H_
