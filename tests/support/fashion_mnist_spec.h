#ifndef PTQ_TESTS_SUPPORT_FASHION_MNIST_SPEC_H_
#define PTQ_TESTS_SUPPORT_FASHION_MNIST_SPEC_H_

#include <cstdint>
#include <string>

#include "ptq/core/dataset.h"
#include "test_env.h"

namespace ptq::testing {

// The first `limit` images of Debian's Fashion-MNIST `split` ("train" or "t10k") at 32 x 32,
// as the bundled models were trained.
inline core::DataSpec FashionMnistSpec(const std::string& split, int64_t limit) {
  core::DataSpec spec;
  spec.path = (FashionMnistDir() / split).string();
  spec.preprocess.size = 32;
  spec.preprocess.resize_short = 0;
  spec.preprocess.mean = {72.94f};
  spec.preprocess.std = {90.02f};
  spec.limit = limit;
  return spec;
}

}  // namespace ptq::testing

#endif  // PTQ_TESTS_SUPPORT_FASHION_MNIST_SPEC_H_
