#ifndef PTQ_CORE_SRC_GRAPH_ZIP_DIRECTORY_H_
#define PTQ_CORE_SRC_GRAPH_ZIP_DIRECTORY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ptq::core {

// One entry of a ZIP archive's central directory (PKWARE APPNOTE 4.3.12), with the ZIP64
// extra field applied when the 32-bit sizes say 0xFFFFFFFF.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
};

// Reads `size` bytes at `offset` of the archive; fewer only at its end.
using ZipReader = std::function<std::string(uint64_t offset, uint64_t size)>;

// The central directory of the archive of `file_size` bytes that `read` gives: the end record
// is searched in the last 64 KiB + 22 bytes (its comment may be up to 65535 bytes), its ZIP64
// form followed when present. Reads only the records, never the entries' data, and at most
// kMaxDirectoryBytes of directory. INVALID_ARGUMENT saying what is malformed otherwise.
// TorchScript files are ZIP archives; the model store checks what they expand to before
// LibTorch inflates any entry.
inline constexpr uint64_t kMaxZipDirectoryBytes = uint64_t{64} << 20;
absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(const ZipReader& read, uint64_t file_size);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_ZIP_DIRECTORY_H_
