#include "client_visible_paths.h"

#include <algorithm>

namespace ptq::server {
namespace fs = std::filesystem;

namespace {

// A character that cannot be part of a path as messages quote them: a folder's path is
// matched only between two of these (or a '/' after it), so /data is not found in
// /database, /x/data or "calibration data".
bool IsBoundary(char c) {
  return c == '\'' || c == '"' || c == ' ' || c == ':' || c == ',' || c == '(' || c == ')' || c == '=' || c == '\n';
}

}  // namespace

ClientVisiblePaths::ClientVisiblePaths(const fs::path& state_dir, const fs::path& data_root) {
  Add(state_dir, "the state directory");
  Add(data_root, "the data root");
  std::sort(roots_.begin(), roots_.end(), [](const Root& a, const Root& b) { return a.path.size() > b.path.size(); });
}

void ClientVisiblePaths::Add(const fs::path& folder, const std::string& name) {
  if (folder.empty()) return;
  std::error_code error;
  for (fs::path form : {folder, fs::absolute(folder, error), fs::weakly_canonical(folder, error)}) {
    std::string text = form.lexically_normal().string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    if (text.size() < 2 || text == ".." || text == "/") continue;
    const bool known = std::any_of(roots_.begin(), roots_.end(), [&](const Root& root) { return root.path == text; });
    if (!known) roots_.push_back({text, name});
  }
}

std::string ClientVisiblePaths::Rewrite(absl::string_view message) const {
  std::string rewritten;
  size_t at = 0;
  while (at < message.size()) {
    const bool starts_word = at == 0 || IsBoundary(message[at - 1]);
    bool matched = false;
    for (const Root& root : roots_) {
      if (!starts_word || message.substr(at, root.path.size()) != root.path) continue;
      const size_t end = at + root.path.size();
      if (end < message.size() && message[end] == '/') {
        at = end + 1;  // the rest of the path, relative to the folder
      } else if (root.path.front() == '/' && (end == message.size() || IsBoundary(message[end]))) {
        rewritten += root.name;
        at = end;
      } else {
        continue;
      }
      matched = true;
      break;
    }
    if (!matched) rewritten += message[at++];
  }
  return rewritten;
}

absl::Status ClientVisiblePaths::Rewrite(const absl::Status& status) const {
  if (status.ok()) return status;
  return absl::Status(status.code(), Rewrite(status.message()));
}

}  // namespace ptq::server
