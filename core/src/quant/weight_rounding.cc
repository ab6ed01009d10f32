#include "quant/weight_rounding.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "graph/executor.h"

namespace ptq::core {
namespace {

constexpr double kZeta = 1.1, kGamma = -0.1;
constexpr double kCodeLimit = 127;
constexpr double kWarmupFraction = 0.2;
constexpr double kBetaStart = 20, kBetaEnd = 2;
constexpr double kAdamBeta1 = 0.9, kAdamBeta2 = 0.999, kAdamEpsilon = 1e-8;

at::Tensor RectifiedSigmoid(const at::Tensor& v) {
  return at::clamp(at::sigmoid(v) * (kZeta - kGamma) + kGamma, 0, 1);
}

}  // namespace

at::Tensor LearnWeightRounding(const Node& layer, const WeightQParams& qparams, const at::Tensor& input,
                               const at::Tensor& target, const WeightRoundingOptions& options, uint64_t seed,
                               const std::atomic<bool>* cancelled) {
  at::AutoGradMode grad_mode(true);
  const at::Tensor weight = layer.weight.detach();
  const at::Tensor scales = BroadcastScales(qparams, weight);
  const at::Tensor steps = weight / scales;
  const at::Tensor floor_codes = at::floor(steps);
  // sigmoid(V) = (rest - gamma) / (zeta - gamma) lies in [1/12, 11/12]: its logit is finite.
  const at::Tensor start = (steps - floor_codes - kGamma) / (kZeta - kGamma);
  at::Tensor v = at::log(start / (1 - start)).detach().requires_grad_(true);
  at::Tensor first_moment = at::zeros_like(v), second_moment = at::zeros_like(v);

  const int64_t images = input.size(0);
  const int64_t batch = std::min<int64_t>(options.batch_images, images);
  std::vector<int64_t> order(static_cast<size_t>(images));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(seed);
  const int warmup = static_cast<int>(options.iterations * kWarmupFraction);
  Node soft = layer;
  for (int step = 0; step < options.iterations && (cancelled == nullptr || !cancelled->load()); ++step) {
    std::shuffle(order.begin(), order.end(), random);
    const at::Tensor picked = at::tensor(std::vector<int64_t>(order.begin(), order.begin() + batch), at::kLong)
                                  .to(input.device());
    const at::Tensor h = RectifiedSigmoid(v);
    soft.weight = scales * at::clamp(floor_codes + h, -kCodeLimit, kCodeLimit);
    const at::Tensor output = RunNode(soft, {input.index_select(0, picked)});
    at::Tensor loss = (output - target.index_select(0, picked)).pow(2).sum(1).mean();
    if (step >= warmup) {
      const double progress = static_cast<double>(step - warmup) / std::max(1, options.iterations - warmup);
      const double beta = kBetaStart + (kBetaEnd - kBetaStart) * progress;
      loss = loss + options.regularization * (1 - (2 * h - 1).abs().pow(beta)).sum();
    }
    loss.backward();
    {
      at::NoGradGuard no_grad;
      const at::Tensor gradient = v.grad();
      first_moment.mul_(kAdamBeta1).add_(gradient, 1 - kAdamBeta1);
      second_moment.mul_(kAdamBeta2).addcmul_(gradient, gradient, 1 - kAdamBeta2);
      const double first_correction = 1 - std::pow(kAdamBeta1, step + 1);
      const double second_correction = 1 - std::pow(kAdamBeta2, step + 1);
      v.sub_(options.learning_rate * (first_moment / first_correction) /
             ((second_moment / second_correction).sqrt() + kAdamEpsilon));
      v.mutable_grad().zero_();
    }
  }
  at::NoGradGuard no_grad;
  const at::Tensor up = (RectifiedSigmoid(v) >= 0.5).to(weight.scalar_type());
  return (scales * at::clamp(floor_codes + up, -kCodeLimit, kCodeLimit)).detach();
}

}  // namespace ptq::core
