#include "export/sensitivity_svg.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ptq::core {
namespace {

constexpr int kNameWidth = 260;
constexpr int kChartWidth = 300;
constexpr int kGap = 40;
constexpr int kRowHeight = 18;
constexpr int kTop = 56;

std::string XmlEscaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
    }
  }
  return out;
}

// One bar scaled against `full`, with its value printed after it.
std::string Bar(int x, int y, double value, double full, const char* colour, const std::string& label) {
  const double clamped = std::isfinite(value) ? std::max(0.0, value) : full;
  const int width = full <= 0 ? 0 : static_cast<int>(std::lround(kChartWidth * std::min(1.0, clamped / full)));
  return absl::StrFormat(
      "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>"
      "<text x=\"%d\" y=\"%d\">%s</text>\n",
      x, y + 2, width, kRowHeight - 4, colour, x + width + 4, y + kRowHeight - 5, label);
}

}  // namespace

std::string SensitivitySvg(const std::vector<LayerSensitivity>& layers, const std::vector<std::string>& float_layers) {
  const std::set<std::string> kept_float(float_layers.begin(), float_layers.end());
  double max_changed = 1;  // percent; at least one so that an all-zero chart has a scale
  double max_sqnr = 1;
  for (const LayerSensitivity& layer : layers) {
    max_changed = std::max(max_changed, 100.0 - layer.only_this_int8.agreement_top1);
    if (std::isfinite(layer.sqnr_db)) max_sqnr = std::max(max_sqnr, layer.sqnr_db);
  }
  const int left_chart = kNameWidth;
  const int right_chart = kNameWidth + kChartWidth + kGap + 40;
  const int width = right_chart + kChartWidth + 60;
  const int height = kTop + kRowHeight * static_cast<int>(layers.size()) + 16;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"8\" y=\"18\" font-size=\"14\">Layer sensitivity on held-out calibration images</text>\n"
      "<text x=\"%d\" y=\"44\">top-1 decisions changed when only this layer is int8 (%%)</text>\n"
      "<text x=\"%d\" y=\"44\">output SQNR in the all-int8 model (dB)</text>\n",
      width, height, left_chart, right_chart);
  for (size_t row = 0; row < layers.size(); ++row) {
    const LayerSensitivity& layer = layers[row];
    const int y = kTop + kRowHeight * static_cast<int>(row);
    const bool is_float = kept_float.count(layer.module_path) != 0;
    const char* colour = is_float ? "#e6550d" : "#3182bd";
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"8\" y=\"%d\">%s%s</text>\n", y + kRowHeight - 5,
                                          XmlEscaped(layer.module_path), is_float ? " (float)" : ""));
    const double changed = 100.0 - layer.only_this_int8.agreement_top1;
    absl::StrAppend(&svg, Bar(left_chart, y, changed, max_changed, colour, absl::StrFormat("%.1f", changed)));
    const std::string sqnr_label = std::isfinite(layer.sqnr_db) ? absl::StrFormat("%.1f", layer.sqnr_db) : "exact";
    absl::StrAppend(&svg, Bar(right_chart, y, layer.sqnr_db, max_sqnr, colour, sqnr_label));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace ptq::core
