// One line for a test's output: what the all-int8 model scores with only its weights int8 and
// with only its activations int8 (ErrorSources).
#ifndef PTQ_TESTS_E2E_ERROR_SOURCES_TEXT_H_
#define PTQ_TESTS_E2E_ERROR_SOURCES_TEXT_H_

#include <cstdio>

#include "ptq/core/report.h"

namespace ptq::core {

inline void PrintErrorSources(const ErrorSources& sources) {
  std::printf("all int8 with only its weights int8: agreement %.2f%%, logit SQNR %.1f dB; with only its activations: "
              "%.2f%%, %.1f dB\n",
              sources.weights_only.agreement_top1, sources.weights_only.logit_sqnr_db,
              sources.activations_only.agreement_top1, sources.activations_only.logit_sqnr_db);
}

}  // namespace ptq::core

#endif  // PTQ_TESTS_E2E_ERROR_SOURCES_TEXT_H_
