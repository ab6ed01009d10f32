#ifndef PTQ_CORE_SRC_EXPORT_QUANTIZED_ENGINE_H_
#define PTQ_CORE_SRC_EXPORT_QUANTIZED_ENGINE_H_

#include <string>

namespace ptq::core {

// LibTorch's quantized engine (at::globalContext().qEngine()) is one per process. It decides
// how int8 weights are packed, when a module is built and again when a saved file loads, and
// which kernels some quantized ops run (add, pooling, hardswish): the same int8 file gives
// other logits under the other engine. Jobs choose their engine (ptq.backend) and run side by
// side, so every use of it holds a QuantizedEngineSection.

// The engine in effect now: "onednn", "qnnpack", or LibTorch's name for another.
std::string CurrentQuantizedEngine();

// Holds the engine at `backend` ("onednn" or "qnnpack") while it lives. Sections of the same
// engine run at once; a section of the other engine waits until every one of them has ended,
// and while it waits no new section of the held engine starts, so neither side starves.
// A guarded section rather than one engine per process: a server runs jobs for both backends,
// and jobs of one backend, the usual case, never wait on each other.
// A thread never opens a section inside another: the inner one would wait forever once a
// section of the other engine waits.
class QuantizedEngineSection {
 public:
  explicit QuantizedEngineSection(const std::string& backend);
  ~QuantizedEngineSection();
  QuantizedEngineSection(const QuantizedEngineSection&) = delete;
  QuantizedEngineSection& operator=(const QuantizedEngineSection&) = delete;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_QUANTIZED_ENGINE_H_
