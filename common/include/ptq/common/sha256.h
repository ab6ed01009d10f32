#ifndef PTQ_COMMON_SHA256_H_
#define PTQ_COMMON_SHA256_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ptq {

// Incremental SHA-256, for hashing uploads and artifacts as their bytes stream past.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view bytes);
  // Lowercase hex digest of everything passed to Update. Call once; the hasher is spent after.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(absl::string_view bytes);

// Lowercase hex SHA-256 of a file's contents; NOT_FOUND if it cannot be opened.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

// True for a 64-character lowercase hex string, the form every sha256 takes in this project.
bool IsSha256Hex(absl::string_view text);

}  // namespace ptq

#endif  // PTQ_COMMON_SHA256_H_
