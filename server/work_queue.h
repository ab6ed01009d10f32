#ifndef PTQ_SERVER_WORK_QUEUE_H_
#define PTQ_SERVER_WORK_QUEUE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ptq::server {

// A busy worker whose task has not said it made progress for a while (WorkQueue::Stalled).
struct StalledWorker {
  std::string device;
  std::string key;  // the item's key: a job id, or empty for an evaluation
  std::chrono::seconds silent{0};
};

// What the server runs on its devices (jobs and evaluations): one FIFO queue, one worker
// thread per device, each at a nice value so that the threads answering RPCs run first when
// work fills every core. Tasks catch their own errors and call Beat() as they make progress,
// so that a wedged one (a read that never returns, a deadlock) shows in Stalled(). Thread-safe.
class WorkQueue {
  struct WorkerSlot;

 public:
  // The worker running a task, as the task sees it.
  class Worker {
   public:
    const std::string& device() const;
    // The task made progress (a batch, a layer, a stage): Stalled() counts silence from here.
    void Beat() const;

   private:
    friend class WorkQueue;
    explicit Worker(WorkerSlot* slot) : slot_(slot) {}
    WorkerSlot* slot_;
  };
  using Task = std::function<void(const Worker& worker)>;

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
  // The busy workers whose task has not started or beaten within `limit`, now.
  std::vector<StalledWorker> Stalled(std::chrono::steady_clock::duration limit) const;
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
  struct WorkerSlot {
    std::string device;
    std::string key;  // of the item running, under mutex_
    // steady_clock nanoseconds of the last beat (the item's start counts as one); 0 when idle.
    // Atomic, so that a beat never waits for a lock.
    std::atomic<int64_t> last_beat{0};
  };
  void RunWorker(WorkerSlot& slot);

  std::deque<WorkerSlot> slots_;  // one per device; a deque, so that Worker's pointers stay put
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
