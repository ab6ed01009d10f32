#ifndef PTQ_CORE_SRC_EXPORT_REPORT_JSON_H_
#define PTQ_CORE_SRC_EXPORT_REPORT_JSON_H_

#include <nlohmann/json.hpp>

#include <vector>

#include "ptq/core/report.h"

namespace ptq::core {

// report.json's "metrics" list (also each entry of its "evaluations").
nlohmann::json MetricsJson(const std::vector<VariantAccuracy>& variants);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_REPORT_JSON_H_
