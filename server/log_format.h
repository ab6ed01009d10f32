#ifndef PTQ_SERVER_LOG_FORMAT_H_
#define PTQ_SERVER_LOG_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ptq::server {

// `text` with every control character (below 0x20, and 0x7f) written as an escape: \n, \r,
// \t, else \xNN. Messages carry names and paths that clients chose; escaped, they cannot
// start a line of their own that passes for the server's.
std::string EscapeControlCharacters(absl::string_view text);

// Makes every spdlog line "[time] [level] message" with the message's control characters
// escaped (EscapeControlCharacters).
void UseTextLogLines();

// Makes every spdlog line one JSON object: {"time": ..., "level": ..., "message": ...}, with
// the message escaped, and "job_id" when the message names a job ("job job-..."). For log
// collectors of container platforms.
void UseJsonLogLines();

}  // namespace ptq::server

#endif  // PTQ_SERVER_LOG_FORMAT_H_
