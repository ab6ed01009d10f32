// IDX images and labels files (raw or gzip) as the dataset reader opens them.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/idx_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("ptq-fuzz-" + std::to_string(::getpid()) + "-images-idx3-ubyte"))
          .string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  (void)ptq::core::ReadIdxImages(path, 64);
  (void)ptq::core::ReadIdxLabels(path);
  return 0;
}
