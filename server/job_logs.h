#ifndef PTQ_SERVER_JOB_LOGS_H_
#define PTQ_SERVER_JOB_LOGS_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client_visible_paths.h"
#include "spdlog/sinks/sink.h"

namespace ptq::server {

// Each job's own log: every server log line that names the job ("job job-... CALIBRATING ->
// EXPORTING", its warnings and its failure) is also appended to `<state dir>/logs/<job>.log`,
// text-formatted, with paths rewritten as clients see them (ClientVisiblePaths). The audit
// lines ("job=...") are not copied: they name callers. A job's file stops growing at
// kMaxBytesPerJob with a line that says so. Thread-safe.
class JobLogs {
 public:
  static constexpr int64_t kMaxBytesPerJob = 1 << 20;

  JobLogs(std::filesystem::path directory, ClientVisiblePaths paths);

  // A sink for the server's logger that feeds Append (add it once the server starts logging
  // job lines; it keeps this object alive).
  std::shared_ptr<spdlog::sinks::sink> Sink();

  // Appends one line (without its newline) to the job's file, within kMaxBytesPerJob.
  void Append(const std::string& job_id, absl::string_view line);
  // Removes the job's file (the job was deleted).
  void Remove(const std::string& job_id);
  // The job's lines so far, oldest first; none when nothing was logged about it yet.
  absl::StatusOr<std::vector<std::string>> Read(const std::string& job_id) const;

 private:
  std::filesystem::path FileOf(const std::string& job_id) const;

  const std::filesystem::path directory_;
  const ClientVisiblePaths paths_;
  mutable std::mutex mutex_;
  std::map<std::string, int64_t> bytes_written_;  // per job, once its file was first appended to
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_LOGS_H_
