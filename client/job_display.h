#ifndef PTQ_CLIENT_JOB_DISPLAY_H_
#define PTQ_CLIENT_JOB_DISPLAY_H_

#include <chrono>
#include <ostream>
#include <string>

#include "ptq/v1/job.pb.h"

namespace ptq::client {

// "CALIBRATING" for JOB_STATE_CALIBRATING.
std::string StateName(v1::JobState state);

// A job's progress as people watch it. On a terminal one line is redrawn in place (state, bar,
// done/total, elapsed time); in a pipe or a log a plain line is written whenever the state
// changes or progress passes another 25%, so logs stay short and readable.
// "3.2 steps/s, ETA 00:12": the rate of `done` steps seen in `seconds` and the time the
// `left` steps take at that rate; "" until a step has been seen and half a second has passed
// (no rate to speak of yet).
std::string RateAndEta(int64_t done, int64_t left, const std::string& unit, double seconds);

class ProgressLine {
 public:
  ProgressLine(std::ostream& out, bool terminal);
  void Show(const v1::Job& job);
  // Ends the redrawn line (terminal) so later output starts on a fresh line.
  void Done();

 private:
  std::ostream& out_;
  const bool terminal_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  v1::JobState last_state_ = v1::JOB_STATE_UNSPECIFIED;
  // The state the rate is measured in, since when, and its steps done then (a watch may
  // start, or resume, in the middle of a state).
  v1::JobState rate_state_ = v1::JOB_STATE_UNSPECIFIED;
  std::chrono::steady_clock::time_point rate_start_ = start_;
  int64_t rate_start_done_ = 0;
  int last_quarter_ = -1;
  bool drawn_ = false;
};

// The fp32 vs int8 table in the seed's format (top-1/top-5 per variant), with the top-1
// agreement and the int8 speed measured during evaluation. Empty when there are no metrics.
std::string MetricsTable(const v1::Job& job);

// Several lines about a job for `ptq-client status`.
std::string JobSummary(const v1::Job& job);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_JOB_DISPLAY_H_
