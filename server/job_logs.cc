#include "job_logs.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "log_format.h"
#include "spdlog/details/log_msg.h"
#include "spdlog/sinks/base_sink.h"

namespace ptq::server {
namespace {

constexpr char kStopLine[] = "(this job's log stops here: it reached 1024 KiB)";
static_assert(JobLogs::kMaxBytesPerJob == 1024 << 10, "kStopLine names the cap");

// Whether a job's log file ends with kStopLine (it was full before a restart).
bool EndsWithStopLine(const std::filesystem::path& file, int64_t size) {
  std::ifstream in(file);
  const int64_t tail = static_cast<int64_t>(sizeof(kStopLine));  // the line and its newline
  if (size < tail || !in.seekg(size - tail)) return false;
  std::string last(tail, '\0');
  in.read(last.data(), tail);
  return last == std::string(kStopLine) + "\n";
}

// Hands the server's log lines that name a job to JobLogs, formatted as text lines whatever
// format the server's own output uses.
class JobLogSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JobLogSink(JobLogs* logs) : logs_(logs), line_formatter_(TextLineFormatter()) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    const absl::string_view text(message.payload.data(), message.payload.size());
    std::optional<std::string> job_id = JobIdNamedIn(text);
    if (!job_id.has_value()) return;
    spdlog::memory_buf_t line;
    line_formatter_->format(message, line);
    logs_->Append(*job_id, absl::StripSuffix(absl::string_view(line.data(), line.size()), "\n"));
  }
  void flush_() override {}
  // The server's own output may switch to JSON lines; a job's log stays text.
  void set_formatter_(std::unique_ptr<spdlog::formatter>) override {}

 private:
  JobLogs* const logs_;
  std::unique_ptr<spdlog::formatter> line_formatter_;
};

}  // namespace

JobLogs::JobLogs(std::filesystem::path directory, ClientVisiblePaths paths)
    : directory_(std::move(directory)), paths_(std::move(paths)) {}

std::shared_ptr<spdlog::sinks::sink> JobLogs::Sink() { return std::make_shared<JobLogSink>(this); }

std::filesystem::path JobLogs::FileOf(const std::string& job_id) const { return directory_ / (job_id + ".log"); }

void JobLogs::Append(const std::string& job_id, absl::string_view line) {
  const std::string rewritten = paths_.Rewrite(line);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [written, first] = bytes_written_.try_emplace(job_id, 0);
  std::error_code error;
  if (first) {
    std::filesystem::create_directories(directory_, error);
    const auto size = std::filesystem::file_size(FileOf(job_id), error);
    written->second = error ? 0 : static_cast<int64_t>(size);
    if (!error && EndsWithStopLine(FileOf(job_id), written->second)) written->second = kMaxBytesPerJob;
  }
  if (written->second >= kMaxBytesPerJob) return;
  std::ofstream out(FileOf(job_id), std::ios::app);
  // Room is kept for the line that says the log stops, so the file never passes the cap.
  constexpr int64_t kStopLineRoom = 128;
  if (written->second + static_cast<int64_t>(rewritten.size()) + 1 > kMaxBytesPerJob - kStopLineRoom) {
    out << kStopLine << "\n";
    written->second = kMaxBytesPerJob;
    return;
  }
  out << rewritten << "\n";
  written->second += static_cast<int64_t>(rewritten.size()) + 1;
}

void JobLogs::Remove(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  bytes_written_.erase(job_id);
  std::error_code ignored;
  std::filesystem::remove(FileOf(job_id), ignored);
}

absl::StatusOr<std::vector<std::string>> JobLogs::Read(const std::string& job_id) const {
  std::ifstream in(FileOf(job_id));
  if (!in) return std::vector<std::string>{};
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read the log of job ", job_id));
  std::vector<std::string> lines = absl::StrSplit(text.str(), '\n', absl::SkipEmpty());
  return lines;
}

}  // namespace ptq::server
