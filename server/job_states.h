#ifndef PTQ_SERVER_JOB_STATES_H_
#define PTQ_SERVER_JOB_STATES_H_

#include <string>

#include "ptq/v1/job.pb.h"

namespace ptq::server {

// SUCCEEDED, FAILED or CANCELLED: nothing will change the job any more.
inline bool IsFinalState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

// A worker is running the job.
inline bool IsRunningState(v1::JobState state) {
  return state == v1::JOB_STATE_CALIBRATING || state == v1::JOB_STATE_EXPORTING || state == v1::JOB_STATE_EVALUATING;
}

// "CALIBRATING" for JOB_STATE_CALIBRATING ("AWAITING_DATA" keeps its underscore), as logs and
// messages write states.
inline std::string StateName(v1::JobState state) {
  return v1::JobState_Name(state).substr(std::string("JOB_STATE_").size());
}

}  // namespace ptq::server

#endif  // PTQ_SERVER_JOB_STATES_H_
