#ifndef PTQ_SERVER_WORKER_WATCHDOG_H_
#define PTQ_SERVER_WORKER_WATCHDOG_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "work_queue.h"

namespace ptq::server {

// Liveness beyond an open port: watches the workers for one whose job or evaluation has made
// no progress for `limit` (a read that never returns, a deadlock) and reports the server live
// or not on each change, logging which worker and job. A wedged worker never recovers by
// itself, so an orchestrator that restarts the server on "not live" (Kubernetes' liveness
// probe) gets the job run again from its stored state. Its own thread, which takes no lock a
// job holds.
class WorkerWatchdog {
 public:
  using FindStalled = std::function<std::vector<StalledWorker>(std::chrono::steady_clock::duration limit)>;
  using ReportLive = std::function<void(bool live)>;

  // Checks every `limit` / 4 (at least every 10 s); `report_live` gets true at once.
  WorkerWatchdog(std::chrono::seconds limit, FindStalled find_stalled, ReportLive report_live);
  ~WorkerWatchdog();  // stops the thread
  WorkerWatchdog(const WorkerWatchdog&) = delete;
  WorkerWatchdog& operator=(const WorkerWatchdog&) = delete;

 private:
  void Run();

  const std::chrono::seconds limit_;
  const FindStalled find_stalled_;
  const ReportLive report_live_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_WORKER_WATCHDOG_H_
