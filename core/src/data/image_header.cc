#include "data/image_header.h"

#include <cctype>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ptq::core {
namespace {

uint64_t Byte(absl::string_view s, size_t at) { return static_cast<uint8_t>(s[at]); }
uint64_t Be16(absl::string_view s, size_t at) { return Byte(s, at) << 8 | Byte(s, at + 1); }
uint64_t Be32(absl::string_view s, size_t at) { return Be16(s, at) << 16 | Be16(s, at + 2); }
uint64_t Le16(absl::string_view s, size_t at) { return Byte(s, at + 1) << 8 | Byte(s, at); }
uint64_t Le24(absl::string_view s, size_t at) { return Byte(s, at + 2) << 16 | Le16(s, at); }
uint64_t Le32(absl::string_view s, size_t at) { return Le16(s, at + 2) << 16 | Le16(s, at); }

absl::Status Cut(absl::string_view format) {
  return absl::InvalidArgumentError(absl::StrCat(format, " header is cut short"));
}

absl::StatusOr<ImageDimensions> Png(absl::string_view s) {
  if (s.size() < 24 || s.substr(12, 4) != "IHDR") return Cut("PNG");
  return ImageDimensions{static_cast<int64_t>(Be32(s, 16)), static_cast<int64_t>(Be32(s, 20))};
}

// Segments from after the start-of-image marker to the first start-of-frame marker (C0-CF but
// C4 Huffman tables, C8 reserved, CC arithmetic conditioning), which holds the frame's size.
absl::StatusOr<ImageDimensions> Jpeg(absl::string_view s) {
  size_t at = 2;
  while (at + 4 <= s.size()) {
    if (Byte(s, at) != 0xFF) return absl::InvalidArgumentError("JPEG segment does not start with a marker");
    const uint64_t marker = Byte(s, at + 1);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      at += 2;
      continue;
    }
    const uint64_t length = Be16(s, at + 2);
    if (length < 2) return absl::InvalidArgumentError("JPEG segment length is below 2");
    const bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame) {
      if (at + 9 > s.size()) break;
      return ImageDimensions{static_cast<int64_t>(Be16(s, at + 7)), static_cast<int64_t>(Be16(s, at + 5))};
    }
    at += 2 + length;
  }
  return Cut("JPEG");
}

absl::StatusOr<ImageDimensions> Bmp(absl::string_view s) {
  if (s.size() < 26) return Cut("BMP");
  if (Le32(s, 14) == 12) return ImageDimensions{static_cast<int64_t>(Le16(s, 18)), static_cast<int64_t>(Le16(s, 20))};
  const int32_t height = static_cast<int32_t>(Le32(s, 22));  // negative: stored top-down
  return ImageDimensions{static_cast<int32_t>(Le32(s, 18)), height < 0 ? -int64_t{height} : height};
}

// "P5 <width> <height> ..." with whitespace and #-comments between the fields.
absl::StatusOr<ImageDimensions> Pnm(absl::string_view s) {
  size_t at = 2;
  int64_t fields[2] = {0, 0};
  for (int64_t& field : fields) {
    while (at < s.size() && (std::isspace(static_cast<unsigned char>(s[at])) || s[at] == '#')) {
      if (s[at] == '#') {
        while (at < s.size() && s[at] != '\n') ++at;
      } else {
        ++at;
      }
    }
    size_t digits = 0;
    while (at < s.size() && std::isdigit(static_cast<unsigned char>(s[at])) && digits < 10) {
      field = field * 10 + (s[at] - '0');
      ++at;
      ++digits;
    }
    if (digits == 0 || digits == 10) return absl::InvalidArgumentError("PNM header has no valid size");
  }
  return ImageDimensions{fields[0], fields[1]};
}

absl::StatusOr<ImageDimensions> WebP(absl::string_view s) {
  if (s.size() < 30) return Cut("WebP");
  const absl::string_view chunk = s.substr(12, 4);
  if (chunk == "VP8 ") return ImageDimensions{static_cast<int64_t>(Le16(s, 26) & 0x3FFF), static_cast<int64_t>(Le16(s, 28) & 0x3FFF)};
  if (chunk == "VP8L") {
    const uint64_t bits = Le32(s, 21);
    return ImageDimensions{static_cast<int64_t>((bits & 0x3FFF) + 1), static_cast<int64_t>(((bits >> 14) & 0x3FFF) + 1)};
  }
  if (chunk == "VP8X") return ImageDimensions{static_cast<int64_t>(Le24(s, 24) + 1), static_cast<int64_t>(Le24(s, 27) + 1)};
  return absl::InvalidArgumentError("WebP has no VP8, VP8L or VP8X chunk");
}

}  // namespace

absl::StatusOr<ImageDimensions> ReadImageDimensions(absl::string_view encoded) {
  if (absl::StartsWith(encoded, "\x89PNG\r\n\x1a\n")) return Png(encoded);
  if (absl::StartsWith(encoded, "\xFF\xD8")) return Jpeg(encoded);
  if (absl::StartsWith(encoded, "BM")) return Bmp(encoded);
  if (encoded.size() >= 2 && encoded[0] == 'P' && encoded[1] >= '1' && encoded[1] <= '6') return Pnm(encoded);
  if (encoded.size() >= 12 && encoded.substr(0, 4) == "RIFF" && encoded.substr(8, 4) == "WEBP") return WebP(encoded);
  return absl::InvalidArgumentError("not a PNG, JPEG, BMP, PNM or WebP image");
}

}  // namespace ptq::core
