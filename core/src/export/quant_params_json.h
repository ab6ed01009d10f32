#ifndef PTQ_CORE_SRC_EXPORT_QUANT_PARAMS_JSON_H_
#define PTQ_CORE_SRC_EXPORT_QUANT_PARAMS_JSON_H_

#include <string>

#include "ptq/core/ptq_config.h"
#include "quant/quantized_model.h"

namespace ptq::core {

// The calibrated model's quant_params.json document (pretty-printed).
std::string QuantParamsJson(const QuantizedModel& model, const PtqConfig& config);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EXPORT_QUANT_PARAMS_JSON_H_
