#ifndef PTQ_CLIENT_REPORT_DISPLAY_H_
#define PTQ_CLIENT_REPORT_DISPLAY_H_

#include <string>

#include "nlohmann/json.hpp"

namespace ptq::client {

// `ptq-client report`'s text for a result directory's report.json: the accuracy table, the
// held-out score, the accuracy budget (met or not, layers left in float) and the per-layer
// sensitivity table, each only when the report has it. Throws nlohmann::json::exception when a
// field has the wrong type.
std::string ReportText(const nlohmann::json& report);

}  // namespace ptq::client

#endif  // PTQ_CLIENT_REPORT_DISPLAY_H_
