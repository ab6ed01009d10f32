#include "work_queue.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "spdlog/spdlog.h"

namespace ptq::server {

WorkQueue::WorkQueue(std::vector<std::string> devices, int nice) : devices_(std::move(devices)), nice_(nice) {}

WorkQueue::~WorkQueue() { Stop(); }

void WorkQueue::Start() {
  for (const std::string& device : devices_) workers_.emplace_back([this, device] { RunWorker(device); });
}

bool WorkQueue::Push(std::string key, Task task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return false;
    items_.push_back(Item{std::move(key), std::move(task)});
  }
  work_available_.notify_one();
  return true;
}

void WorkQueue::Remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  items_.erase(std::remove_if(items_.begin(), items_.end(), [&](const Item& item) { return item.key == key; }),
               items_.end());
}

bool WorkQueue::accepting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !closed_;
}

int WorkQueue::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(items_.size());
}

int WorkQueue::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_;
}

bool WorkQueue::Drain(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mutex_);
  closed_ = true;
  work_available_.notify_all();
  if (busy_ > 0) spdlog::info("draining: waiting up to {} ms for {} running item(s)", grace.count(), busy_);
  return worker_idle_.wait_for(lock, grace, [&] { return busy_ == 0; });
}

void WorkQueue::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  work_available_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void WorkQueue::RunWorker(const std::string& device) {
  // Per thread on Linux; the OpenMP team this thread starts for LibTorch inherits it.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice_) != 0) {
    spdlog::warn("worker {}: could not set nice {}: {}", device, nice_, std::strerror(errno));
  }
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_available_.wait(lock, [&] { return closed_ || !items_.empty(); });
      if (closed_) return;
      item = std::move(items_.front());
      items_.pop_front();
      ++busy_;
    }
    item.task(device);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
    worker_idle_.notify_all();
  }
}

}  // namespace ptq::server
