// The accuracy budget's decisions and the sensitivity picture, on hand-made inputs.
#include "quant/accuracy_budget.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "export/sensitivity_svg.h"
#include "ptq/core/batch.h"

namespace ptq::core {
namespace {

TEST(CompareLogitsTest, CountsAgreementDropAndLogitSqnrByHand) {
  // Three images, three classes. fp32 picks 0, 1, 2; the candidate picks 0, 2, 2.
  const at::Tensor reference = torch::tensor({{3.0f, 1.0f, 0.0f}, {0.0f, 2.0f, 1.0f}, {0.0f, 0.0f, 1.0f}});
  const at::Tensor candidate = torch::tensor({{3.0f, 1.0f, 0.0f}, {0.0f, 1.0f, 2.0f}, {0.0f, 0.0f, 1.0f}});
  // Labels 0, 1, unknown: fp32 gets both labelled right, the candidate one of two.
  const HeldOutScore score = CompareLogits(reference, candidate, {0, 1, kNoLabel});
  EXPECT_EQ(score.images, 3);
  EXPECT_EQ(score.labelled, 2);
  EXPECT_NEAR(score.agreement_top1, 200.0 / 3, 1e-9);
  EXPECT_NEAR(score.top1_drop, 50.0, 1e-9);
  // signal 9+1+4+1+1 = 16, noise (2-1)^2 + (1-2)^2 = 2: 10 log10(8).
  EXPECT_NEAR(score.logit_sqnr_db, 10 * std::log10(8.0), 1e-6);

  const HeldOutScore same = CompareLogits(reference, reference, {kNoLabel, kNoLabel, kNoLabel});
  EXPECT_EQ(same.labelled, 0);
  EXPECT_EQ(same.top1_drop, 0);
  EXPECT_EQ(same.agreement_top1, 100);
  EXPECT_TRUE(std::isinf(same.logit_sqnr_db));
}

TEST(AccuracyBudgetTest, EveryBoundAskedForMustHold) {
  HeldOutScore score;
  score.agreement_top1 = 97.5;
  score.top1_drop = 0.5;
  EXPECT_TRUE(MeetsBudget(score, {}));
  EXPECT_TRUE(MeetsBudget(score, {97.5, -1}));
  EXPECT_FALSE(MeetsBudget(score, {98, -1}));
  EXPECT_TRUE(MeetsBudget(score, {-1, 0.5}));
  EXPECT_FALSE(MeetsBudget(score, {-1, 0.4}));
  EXPECT_FALSE(MeetsBudget(score, {97, 0.2}));
  EXPECT_FALSE(AccuracyBudget{}.asked());
  EXPECT_TRUE((AccuracyBudget{-1, 0}).asked());
}

LayerSensitivity Layer(const char* path, double only_int8_sqnr, double only_int8_agreement) {
  LayerSensitivity layer;
  layer.module_path = path;
  layer.only_this_int8.logit_sqnr_db = only_int8_sqnr;
  layer.only_this_int8.agreement_top1 = only_int8_agreement;
  return layer;
}

TEST(AccuracyBudgetTest, TheLayerThatHurtsMostAloneGoesToFloatFirst) {
  const std::vector<LayerSensitivity> layers = {Layer("a", 40, 100), Layer("b", 25, 97), Layer("c", INFINITY, 100),
                                                Layer("d", 25, 95), Layer("e", 31, 100)};
  EXPECT_EQ(FallbackOrder(layers), (std::vector<std::string>{"d", "b", "e", "a", "c"}));
}

TEST(SensitivitySvgTest, OneRowPerLayerEscapedWithFloatLayersMarked) {
  LayerSensitivity plain = Layer("features.0", 30, 96);
  plain.sqnr_db = 20;
  LayerSensitivity odd = Layer("head<&\"'>", 40, 100);
  odd.sqnr_db = INFINITY;
  const std::string svg = SensitivitySvg({plain, odd}, {"features.0"});
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("features.0 (float)"), std::string::npos);
  EXPECT_NE(svg.find("head&lt;&amp;&quot;&apos;&gt;</text>"), std::string::npos);
  EXPECT_EQ(svg.find("head<"), std::string::npos);
  // 4% of decisions changed is the longest bar (the whole chart); no change draws nothing.
  EXPECT_NE(svg.find("width=\"300\" height=\"14\" fill=\"#e6550d\"/><text x=\"564\" y=\"69\">4.0</text>"),
            std::string::npos);
  EXPECT_NE(svg.find("width=\"0\" height=\"14\" fill=\"#3182bd\"/><text x=\"264\" y=\"87\">0.0</text>"),
            std::string::npos);
  EXPECT_NE(svg.find(">exact</text>"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

}  // namespace
}  // namespace ptq::core
