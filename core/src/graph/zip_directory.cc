#include "graph/zip_directory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ptq::core {
namespace {

constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kEntrySignature = 0x02014b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kEntryHeaderSize = 46;
constexpr uint16_t kZip64ExtraId = 0x0001;

// Little-endian integers at `at` of `bytes`; callers check the bounds first.
uint64_t Le(const std::string& bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
  return value;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a well-formed ZIP archive: ", what));
}

// Where the directory is and how many entries it has, from the end record (or its ZIP64 form).
struct DirectoryLocation {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t entries = 0;
};

absl::StatusOr<DirectoryLocation> LocateDirectory(const ZipReader& read, uint64_t file_size) {
  if (file_size < kEndSize) return Malformed("shorter than an end record");
  const uint64_t tail_size = std::min<uint64_t>(file_size, kEndSize + 0xFFFF + kZip64LocatorSize);
  const uint64_t tail_start = file_size - tail_size;
  const std::string tail = read(tail_start, tail_size);
  if (tail.size() != tail_size) return Malformed("cannot read its end");
  // The last end record whose comment length reaches exactly the end of the file.
  for (uint64_t at = tail_size - kEndSize + 1; at-- > 0;) {
    if (Le(tail, at, 4) != kEndSignature || at + kEndSize + Le(tail, at + 20, 2) != tail_size) continue;
    DirectoryLocation location{Le(tail, at + 16, 4), Le(tail, at + 12, 4), Le(tail, at + 10, 2)};
    const bool zip64 = location.offset == 0xFFFFFFFF || location.size == 0xFFFFFFFF || location.entries == 0xFFFF;
    if (!zip64) return location;
    if (at < kZip64LocatorSize || Le(tail, at - kZip64LocatorSize, 4) != kZip64LocatorSignature) {
      return Malformed("a ZIP64 end record is announced but its locator is missing");
    }
    const uint64_t end64_offset = Le(tail, at - kZip64LocatorSize + 8, 8);
    if (end64_offset > file_size || file_size - end64_offset < kZip64EndSize) {
      return Malformed("the ZIP64 end record lies outside the file");
    }
    const std::string end64 = read(end64_offset, kZip64EndSize);
    if (end64.size() != kZip64EndSize || Le(end64, 0, 4) != kZip64EndSignature) {
      return Malformed("the ZIP64 end record has no signature");
    }
    return DirectoryLocation{Le(end64, 48, 8), Le(end64, 40, 8), Le(end64, 32, 8)};
  }
  return Malformed("no end-of-central-directory record");
}

// Applies the ZIP64 extra field of `extra` to the sizes that were 0xFFFFFFFF, in the order
// the format gives them (uncompressed, then compressed).
absl::Status ApplyZip64Extra(const std::string& extra, ZipEntry& entry) {
  size_t at = 0;
  while (at + 4 <= extra.size()) {
    const uint64_t id = Le(extra, at, 2);
    const uint64_t length = Le(extra, at + 2, 2);
    if (at + 4 + length > extra.size()) return Malformed(absl::StrCat("entry '", entry.name, "' has a cut extra field"));
    if (id == kZip64ExtraId) {
      size_t field = at + 4;
      for (uint64_t* size : {&entry.uncompressed_size, &entry.compressed_size}) {
        if (*size != 0xFFFFFFFF) continue;
        if (field + 8 > at + 4 + length) {
          return Malformed(absl::StrCat("entry '", entry.name, "' has a short ZIP64 field"));
        }
        *size = Le(extra, field, 8);
        field += 8;
      }
      return absl::OkStatus();
    }
    at += 4 + length;
  }
  if (entry.uncompressed_size == 0xFFFFFFFF || entry.compressed_size == 0xFFFFFFFF) {
    return Malformed(absl::StrCat("entry '", entry.name, "' lacks its ZIP64 sizes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(const ZipReader& read, uint64_t file_size) {
  absl::StatusOr<DirectoryLocation> location = LocateDirectory(read, file_size);
  if (!location.ok()) return location.status();
  if (location->offset > file_size || location->size > file_size - location->offset) {
    return Malformed("its central directory lies outside the file");
  }
  if (location->size > kMaxZipDirectoryBytes) {
    return Malformed(absl::StrCat("a central directory of ", location->size, " bytes; at most ",
                                  kMaxZipDirectoryBytes, " are read"));
  }
  const std::string directory = read(location->offset, location->size);
  if (directory.size() != location->size) return Malformed("cannot read its central directory");
  std::vector<ZipEntry> entries;
  size_t at = 0;
  while (at + kEntryHeaderSize <= directory.size() && Le(directory, at, 4) == kEntrySignature) {
    const size_t name_length = Le(directory, at + 28, 2);
    const size_t extra_length = Le(directory, at + 30, 2);
    const size_t comment_length = Le(directory, at + 32, 2);
    const size_t next = at + kEntryHeaderSize + name_length + extra_length + comment_length;
    if (next > directory.size()) return Malformed("a central directory entry runs past the directory");
    ZipEntry entry;
    entry.method = static_cast<uint16_t>(Le(directory, at + 10, 2));
    entry.compressed_size = Le(directory, at + 20, 4);
    entry.uncompressed_size = Le(directory, at + 24, 4);
    entry.name = directory.substr(at + kEntryHeaderSize, name_length);
    if (absl::Status applied = ApplyZip64Extra(directory.substr(at + kEntryHeaderSize + name_length, extra_length), entry);
        !applied.ok()) {
      return applied;
    }
    entries.push_back(std::move(entry));
    at = next;
  }
  if (entries.size() != location->entries) {
    return Malformed(absl::StrCat("the end record announces ", location->entries, " entries, the directory holds ",
                                  entries.size()));
  }
  return entries;
}

}  // namespace ptq::core
