#ifndef PTQ_CORE_SRC_EXPORT_SENSITIVITY_SVG_H_
#define PTQ_CORE_SRC_EXPORT_SENSITIVITY_SVG_H_

#include <string>
#include <vector>

#include "ptq/core/report.h"

namespace ptq::core {

// sensitivity.svg: one row per layer in graph order, two bar charts side by side: the percent
// of held-out top-1 decisions that change when only that layer is int8 (100 - agreement), and
// the layer's output SQNR in the all-int8 model. Rows of `float_layers` (the accuracy budget's)
// are drawn in another colour and marked "float". Module paths are XML-escaped.
std::string SensitivitySvg(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& float_layers);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_SENSITIVITY_SVG_H_
