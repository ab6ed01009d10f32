#include "ptq/common/file_write.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ptq {
namespace {

absl::Status WriteError(const std::filesystem::path& path, int error) {
  const std::string message = absl::StrCat("cannot write '", path.string(), "': ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::Status WriteFileContents(const std::filesystem::path& path, absl::string_view contents) {
  return WriteFileParts(path, {contents});
}

absl::Status WriteFileParts(const std::filesystem::path& path, const std::vector<absl::string_view>& parts) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return WriteError(path, errno);
  for (absl::string_view contents : parts) {
    size_t written = 0;
    while (written < contents.size()) {
      const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        return WriteError(path, error);
      }
      written += static_cast<size_t>(n);
    }
  }
  // Space a filesystem reserves lazily (delayed allocation, NFS) can still run out here.
  if (::close(fd) != 0) return WriteError(path, errno);
  return absl::OkStatus();
}

}  // namespace ptq
