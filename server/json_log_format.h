#ifndef PTQ_SERVER_JSON_LOG_FORMAT_H_
#define PTQ_SERVER_JSON_LOG_FORMAT_H_

namespace ptq::server {

// Makes every spdlog line one JSON object: {"time": ..., "level": ..., "message": ...}, with
// the message escaped, and "job_id" when the message names a job ("job job-..."). For log
// collectors of container platforms.
void UseJsonLogLines();

}  // namespace ptq::server

#endif  // PTQ_SERVER_JSON_LOG_FORMAT_H_
