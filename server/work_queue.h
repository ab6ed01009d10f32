#ifndef PTQ_SERVER_WORK_QUEUE_H_
#define PTQ_SERVER_WORK_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ptq::server {

// What the server runs on its devices (jobs and evaluations): one FIFO queue, one worker
// thread per device, each at a nice value so that the threads answering RPCs run first when
// work fills every core. Tasks catch their own errors. Thread-safe.
class WorkQueue {
 public:
  using Task = std::function<void(const std::string& device)>;

  // One worker per entry of `devices` ("cpu", "cuda:0", ...) once Start() is called.
  WorkQueue(std::vector<std::string> devices, int nice);
  ~WorkQueue();  // Stop()s

  void Start();
  // Queues `task` under `key` (a job id, or empty). False, queuing nothing, once draining or
  // stopped.
  bool Push(std::string key, Task task);
  // Drops the queued items under `key`; one a worker already took runs on.
  void Remove(const std::string& key);
  // False once Drain or Stop began.
  bool accepting() const;
  // Items waiting for a worker, and workers running one, now.
  int queued() const;
  int busy() const;
  // No item is taken or accepted any more; waits up to `grace` for the running ones to end.
  // Returns whether they all did. Queued items stay queued.
  bool Drain(std::chrono::milliseconds grace);
  // Waits for the running items to end and the workers to exit. Idempotent.
  void Stop();

 private:
  struct Item {
    std::string key;
    Task task;
  };
  void RunWorker(const std::string& device);

  const std::vector<std::string> devices_;
  const int nice_;
  mutable std::mutex mutex_;
  std::condition_variable work_available_;
  std::condition_variable worker_idle_;
  std::deque<Item> items_;
  bool closed_ = false;  // draining or stopped: nothing is taken or accepted
  int busy_ = 0;         // workers running an item now
  std::vector<std::thread> workers_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_WORK_QUEUE_H_
