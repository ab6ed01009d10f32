#include "export/quantized_engine.h"

#include <ATen/Context.h>

#include <condition_variable>
#include <map>
#include <mutex>

namespace ptq::core {
namespace {

// Who holds the process's engine: how many sections, of which engine, and how many sections
// of each engine wait.
struct EngineHolders {
  std::mutex mutex;
  std::condition_variable changed;
  at::QEngine engine = at::QEngine::NoQEngine;
  int holding = 0;
  std::map<at::QEngine, int> waiting;
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
  const auto others_wait = [&] {
    for (const auto& [waiting_for, count] : holders.waiting) {
      if (waiting_for != engine && count > 0) return true;
    }
    return false;
  };
  ++holders.waiting[engine];
  holders.changed.wait(lock, [&] { return holders.holding == 0 || (holders.engine == engine && !others_wait()); });
  --holders.waiting[engine];
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
