// QuantizedEngineSection: LibTorch's process-wide quantized engine held per section, shared by
// sections of one engine, handed to the other engine only when they have all ended.
#include "export/quantized_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

namespace ptq::core {
namespace {

using namespace std::chrono_literals;

// Waits (at most 10 s) for `flag`; false if it never came.
bool Eventually(const std::atomic<bool>& flag) {
  for (int i = 0; i < 1000 && !flag.load(); ++i) std::this_thread::sleep_for(10ms);
  return flag.load();
}

TEST(QuantizedEngineSectionTest, SetsTheEngineAndSectionsOfOneEngineOverlap) {
  std::optional<QuantizedEngineSection> outer(std::in_place, "qnnpack");
  EXPECT_EQ(CurrentQuantizedEngine(), "qnnpack");
  std::atomic<bool> inside{false};
  std::thread same([&] {
    const QuantizedEngineSection section("qnnpack");
    inside = true;
  });
  EXPECT_TRUE(Eventually(inside)) << "a second qnnpack section waited for the first";
  same.join();
  outer.reset();
  const QuantizedEngineSection onednn("onednn");
  EXPECT_EQ(CurrentQuantizedEngine(), "onednn");
}

TEST(QuantizedEngineSectionTest, TheOtherEngineWaitsAndNewcomersOfTheHeldOneQueueBehindIt) {
  std::optional<QuantizedEngineSection> onednn(std::in_place, "onednn");
  std::atomic<bool> qnnpack_inside{false}, qnnpack_may_leave{false}, late_onednn_inside{false};
  std::atomic<bool> engine_held{true};
  std::thread qnnpack([&] {
    const QuantizedEngineSection section("qnnpack");
    qnnpack_inside = true;
    engine_held = engine_held && CurrentQuantizedEngine() == "qnnpack";
    while (!qnnpack_may_leave) std::this_thread::sleep_for(1ms);
    engine_held = engine_held && CurrentQuantizedEngine() == "qnnpack";
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(qnnpack_inside) << "qnnpack entered while an onednn section was open";
  EXPECT_EQ(CurrentQuantizedEngine(), "onednn");
  // A new onednn section does not overtake the waiting qnnpack one.
  std::thread late_onednn([&] {
    const QuantizedEngineSection section("onednn");
    late_onednn_inside = true;
    engine_held = engine_held && CurrentQuantizedEngine() == "onednn";
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(late_onednn_inside) << "an onednn section overtook the waiting qnnpack one";
  onednn.reset();
  EXPECT_TRUE(Eventually(qnnpack_inside));
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(late_onednn_inside) << "onednn entered while qnnpack held the engine";
  qnnpack_may_leave = true;
  qnnpack.join();
  EXPECT_TRUE(Eventually(late_onednn_inside));
  late_onednn.join();
  EXPECT_TRUE(engine_held) << "the engine changed under a section";
}

}  // namespace
}  // namespace ptq::core
