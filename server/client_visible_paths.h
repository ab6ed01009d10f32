#ifndef PTQ_SERVER_CLIENT_VISIBLE_PATHS_H_
#define PTQ_SERVER_CLIENT_VISIBLE_PATHS_H_

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ptq::server {

// Server paths in what a client reads. Core and the stores name files by their full paths,
// which is right for the server's log; a client sees them relative to the folder it knows
// them by: datasets relative to the data root (as configs name them), models and results
// relative to the state directory. Each folder is matched as given, absolute and
// symlink-resolved, where a quoted path or a word starts; an absolute folder named alone
// becomes "the data root" / "the state directory" (a relative one only as a path's start).
class ClientVisiblePaths {
 public:
  ClientVisiblePaths(const std::filesystem::path& state_dir, const std::filesystem::path& data_root);

  std::string Rewrite(absl::string_view message) const;
  absl::Status Rewrite(const absl::Status& status) const;

 private:
  struct Root {
    std::string path;  // without a trailing '/'
    std::string name;  // what the folder alone is called
  };
  void Add(const std::filesystem::path& folder, const std::string& name);

  std::vector<Root> roots_;  // longest first, so a folder inside another is matched first
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_CLIENT_VISIBLE_PATHS_H_
