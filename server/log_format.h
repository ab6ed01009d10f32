#ifndef PTQ_SERVER_LOG_FORMAT_H_
#define PTQ_SERVER_LOG_FORMAT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "spdlog/formatter.h"

namespace ptq::server {

// `text` with every control character (below 0x20, and 0x7f) written as an escape: \n, \r,
// \t, else \xNN. Messages carry names and paths that clients chose; escaped, they cannot
// start a line of their own that passes for the server's.
std::string EscapeControlCharacters(absl::string_view text);

// The id of the job a log message is about ("job job-0123456789abcdef ..."), if it names one.
std::optional<std::string> JobIdNamedIn(absl::string_view message);

// Formats spdlog lines as "[time] [level] message" with the message's control characters
// escaped (EscapeControlCharacters).
std::unique_ptr<spdlog::formatter> TextLineFormatter();

// Makes every spdlog line a TextLineFormatter line.
void UseTextLogLines();

// Makes every spdlog line one JSON object: {"time": ..., "level": ..., "message": ...}, with
// the message escaped, and "job_id" when the message names a job ("job job-..."). For log
// collectors of container platforms.
void UseJsonLogLines();

}  // namespace ptq::server

#endif  // PTQ_SERVER_LOG_FORMAT_H_
