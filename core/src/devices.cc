#include "ptq/core/devices.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace ptq::core {

int CudaDeviceCount() { return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0; }

void SetIntraOpThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

void KeepCudaAtTrueFp32() {
  static std::once_flag once;
  std::call_once(once, [] {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  });
}

std::string CapOnednnBelowAmx() {
  const bool operator_chose = std::getenv("ONEDNN_MAX_CPU_ISA") != nullptr || std::getenv("DNNL_MAX_CPU_ISA") != nullptr;
  __builtin_cpu_init();
  if (!operator_chose && __builtin_cpu_supports("amx-int8")) {
    // Fails (and changes nothing) once onednn has run; the set in effect is reported either way.
    (void)dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16);
  }
  return OnednnInstructionSet();
}

std::string OnednnInstructionSet() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "all";
  }
}

std::string LibTorchVersion() { return TORCH_VERSION; }

std::string OnednnVersion() {
  const dnnl_version_t* version = dnnl_version();
  return absl::StrCat(version->major, ".", version->minor, ".", version->patch);
}

}  // namespace ptq::core
