#include "work_queue.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "spdlog/spdlog.h"

namespace ptq::server {

namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const std::string& WorkQueue::Worker::device() const { return slot_->device; }

void WorkQueue::Worker::Beat() const { slot_->last_beat.store(SteadyNanos()); }

WorkQueue::WorkQueue(std::vector<std::string> devices, int nice) : nice_(nice) {
  for (std::string& device : devices) slots_.emplace_back().device = std::move(device);
}

WorkQueue::~WorkQueue() { Stop(); }

void WorkQueue::Start() {
  for (WorkerSlot& slot : slots_) workers_.emplace_back([this, &slot] { RunWorker(slot); });
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

std::vector<StalledWorker> WorkQueue::Stalled(std::chrono::steady_clock::duration limit) const {
  const int64_t now = SteadyNanos();
  std::vector<StalledWorker> stalled;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const WorkerSlot& slot : slots_) {
    const int64_t last_beat = slot.last_beat.load();
    const std::chrono::nanoseconds silent(now - last_beat);
    if (last_beat != 0 && silent > limit) {
      stalled.push_back({slot.device, slot.key, std::chrono::duration_cast<std::chrono::seconds>(silent)});
    }
  }
  return stalled;
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

void WorkQueue::RunWorker(WorkerSlot& slot) {
  const std::string& device = slot.device;
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
      slot.key = item.key;
      slot.last_beat.store(SteadyNanos());
    }
    item.task(Worker(&slot));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
      slot.last_beat.store(0);
      slot.key.clear();
    }
    worker_idle_.notify_all();
  }
}

}  // namespace ptq::server
