// The server's validation of a submitted JobConfig (ResolveJobConfig) on arbitrary protobuf
// bytes, with a data root holding one small IDX dataset so server-side paths resolve.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "job_config.h"

namespace {

// A data root with "digits/t10k-{images,labels}" (two 2 x 2 images), made once per process.
const std::string& DataRoot() {
  static const std::string root = [] {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("ptq-fuzz-root-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "digits");
    std::ofstream(dir / "digits" / "t10k-images-idx3-ubyte", std::ios::binary)
        << std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02", 16) << std::string(8, '\x7f');
    std::ofstream(dir / "digits" / "t10k-labels-idx1-ubyte", std::ios::binary)
        << std::string("\0\0\x08\x01\0\0\0\x02", 8) << std::string("\x01\x02", 2);
    return dir.string();
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ptq::v1::JobConfig config;
  if (!config.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)ptq::server::ResolveJobConfig(&config, DataRoot());
  return 0;
}
