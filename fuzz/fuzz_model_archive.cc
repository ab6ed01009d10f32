// The ZIP central directory of an uploaded model, read before LibTorch opens the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "graph/zip_directory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string archive(reinterpret_cast<const char*>(data), size);
  (void)ptq::core::ReadZipDirectory(
      [&archive](uint64_t offset, uint64_t length) {
        return offset >= archive.size() ? std::string() : archive.substr(offset, length);
      },
      archive.size());
  return 0;
}
