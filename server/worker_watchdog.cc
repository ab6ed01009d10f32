#include "worker_watchdog.h"

#include <algorithm>
#include <utility>

#include "spdlog/spdlog.h"

namespace ptq::server {

WorkerWatchdog::WorkerWatchdog(std::chrono::seconds limit, FindStalled find_stalled, ReportLive report_live)
    : limit_(limit), find_stalled_(std::move(find_stalled)), report_live_(std::move(report_live)) {
  report_live_(true);
  thread_ = std::thread([this] { Run(); });
}

WorkerWatchdog::~WorkerWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WorkerWatchdog::Run() {
  const auto period = std::clamp<std::chrono::milliseconds>(limit_ / 4, std::chrono::milliseconds(250),
                                                             std::chrono::seconds(10));
  bool live = true;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    const std::vector<StalledWorker> stalled = find_stalled_(limit_);
    for (const StalledWorker& worker : stalled) {
      if (!live) break;  // said once per episode
      const std::string what = worker.key.empty() ? "an evaluation" : "job " + worker.key;
      spdlog::error("worker {} has made no progress on {} for {} s (limit {} s): the server reports itself "
                    "not live (health service 'liveness'), so that it is restarted and the job runs again",
                    worker.device, what, worker.silent.count(), limit_.count());
    }
    if (stalled.empty() != live) {
      live = stalled.empty();
      if (live) spdlog::info("every worker is making progress again: the server reports itself live");
      report_live_(live);
    }
  }
}

}  // namespace ptq::server
