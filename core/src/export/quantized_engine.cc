#include "export/quantized_engine.h"

#include <ATen/Context.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>

namespace ptq::core {
namespace {

// Who holds the process's engine: how many sections, of which engine, and the sections that
// wait, by arrival (a ticket each).
struct EngineHolders {
  std::mutex mutex;
  std::condition_variable changed;
  at::QEngine engine = at::QEngine::NoQEngine;
  int holding = 0;
  uint64_t next_ticket = 0;
  std::map<uint64_t, at::QEngine> waiting;
};

EngineHolders& Holders() {
  static EngineHolders holders;
  return holders;
}

}  // namespace

std::string CurrentQuantizedEngine() {
  switch (at::globalContext().qEngine()) {
    case at::QEngine::ONEDNN: return "onednn";
    case at::QEngine::QNNPACK: return "qnnpack";
    default: return c10::toString(at::globalContext().qEngine());
  }
}

QuantizedEngineSection::QuantizedEngineSection(const std::string& backend) {
  const at::QEngine engine = backend == "qnnpack" ? at::QEngine::QNNPACK : at::QEngine::ONEDNN;
  EngineHolders& holders = Holders();
  std::unique_lock<std::mutex> lock(holders.mutex);
  const uint64_t ticket = holders.next_ticket++;
  holders.waiting[ticket] = engine;
  // A section of the other engine that came first goes first, also when the engine is free:
  // woken together, the later one could otherwise win the race for the lock.
  const auto other_engine_ahead = [&] {
    for (const auto& [earlier, waiting_for] : holders.waiting) {
      if (earlier >= ticket) return false;
      if (waiting_for != engine) return true;
    }
    return false;
  };
  holders.changed.wait(
      lock, [&] { return (holders.holding == 0 || holders.engine == engine) && !other_engine_ahead(); });
  holders.waiting.erase(ticket);
  if (holders.holding == 0) {
    at::globalContext().setQEngine(engine);
    holders.engine = engine;
  }
  ++holders.holding;
}

QuantizedEngineSection::~QuantizedEngineSection() {
  EngineHolders& holders = Holders();
  {
    std::lock_guard<std::mutex> lock(holders.mutex);
    --holders.holding;
  }
  holders.changed.notify_all();
}

}  // namespace ptq::core
