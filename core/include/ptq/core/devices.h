#ifndef PTQ_CORE_DEVICES_H_
#define PTQ_CORE_DEVICES_H_

#include <string>

namespace ptq::core {

// CUDA devices LibTorch sees: 0 with a CPU-only LibTorch such as Debian's, or without a GPU.
int CudaDeviceCount();

// Sets LibTorch's intra-op thread count. There is one pool per process, so CPU workers that run
// at the same time share it; `threads` <= 0 leaves the setting alone.
void SetIntraOpThreads(int threads);

// Turns TF32 off for cuDNN and cuBLAS, once per process (later calls change nothing).
// PyTorch lets cuDNN convolutions use TF32 by default, which moved fp32 logits by 1e-3 and
// flipped 1.6% of simulated int8 top-1 decisions against the CPU on an H100
// (tests/gpu/run_on_device.sh): calibration needs a true fp32 reference. Sessions on a CUDA
// device call it; every job wants the same setting, so it is set once, not per job.
void KeepCudaAtTrueFp32();

// On CPUs with AMX (Sapphire Rapids and later) onednn 2.6, under LibTorch's int8 convolutions,
// picks AMX kernels for dense layers, and on MobileNet layers at batch 32 they are slower than
// its AVX-512 VNNI kernels (bundled MobileNetV2 at 32x32: int8 14.0k -> 21.2k images/s without
// AMX; fp32, which AMX does not run, and 224x224 int8 unchanged). This caps onednn's
// instruction set below AMX on such CPUs, unless the operator chose a cap with
// ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA. onednn fixes its instruction set at its first
// primitive, so call this before any LibTorch work; later it changes nothing.
// Returns OnednnInstructionSet().
std::string CapOnednnBelowAmx();

// The instruction set onednn dispatches to, in its own names ("avx512_core_bf16").
std::string OnednnInstructionSet();

// Versions of the libraries whose kernels compute the int8 results, as linked at run time:
// "1.13.0" (LibTorch, from its headers: Debian's library has no runtime query), "2.7.3" (onednn).
std::string LibTorchVersion();
std::string OnednnVersion();

}  // namespace ptq::core

#endif  // PTQ_CORE_DEVICES_H_
