#ifndef PTQ_CLIENT_JOB_CONFIG_FILE_H_
#define PTQ_CLIENT_JOB_CONFIG_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ptq/v1/config.pb.h"

namespace ptq::client {

// A job config file as ptq-client reads it (the JSON of ARCHITECTURE.md).
struct LocalJobConfig {
  v1::JobConfig config;
  // model.path resolved against the config file's folder; empty when only model_id is given.
  std::string model_path;
  // calibration.path resolved likewise, for the "client" and "stream" sources, which
  // ptq-client streams from this machine.
  std::string local_calibration_path;
};

// A job config is a few objects deep and a few KB; these bounds refuse anything else before
// it is parsed.
inline constexpr size_t kMaxConfigDepth = 16;
inline constexpr size_t kMaxConfigBytes = size_t{1} << 20;

// Deepest nesting of JSON objects and arrays in `text` (brackets inside strings do not count).
size_t JsonNestingDepth(absl::string_view text);

// Parses and checks a config file before anything is sent: unknown keys, wrong JSON types
// and missing files are INVALID_ARGUMENT naming the key ("mnv3.json: ptq.hist_percnt:
// unknown key"), as are a path that is not a regular file and a file over kMaxConfigBytes or
// nested deeper than kMaxConfigDepth. `fuse_list` may be written as the seed writes it, a list
// of layer-name lists.
absl::StatusOr<LocalJobConfig> LoadJobConfig(const std::string& path);
// The same checks on a config's text; `path` names it in messages and anchors its relative
// paths.
absl::StatusOr<LocalJobConfig> ParseJobConfig(absl::string_view text, const std::string& path);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_JOB_CONFIG_FILE_H_
