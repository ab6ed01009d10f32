#include "job_display.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ptq::client {
namespace {

const v1::VariantMetrics* Find(const v1::Metrics& metrics, const std::string& name) {
  for (const v1::VariantMetrics& variant : metrics.variants()) {
    if (variant.variant() == name) return &variant;
  }
  return nullptr;
}

std::string TopOneFive(const v1::VariantMetrics* variant) {
  return variant == nullptr ? "-" : absl::StrFormat("%.2f/%.2f", variant->top1(), variant->top5());
}

std::string Elapsed(std::chrono::steady_clock::duration elapsed) {
  const int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  return absl::StrFormat("%02d:%02d", seconds / 60, seconds % 60);
}

}  // namespace

std::string RateAndEta(int64_t done, int64_t left, const std::string& unit, double seconds) {
  if (done <= 0 || seconds < 0.5) return "";
  const double rate = static_cast<double>(done) / seconds;
  const double left_seconds = static_cast<double>(std::max<int64_t>(0, left)) / rate;
  return absl::StrFormat("%.1f %s/s, ETA %s", rate, unit,
                         Elapsed(std::chrono::seconds(static_cast<int64_t>(left_seconds + 0.5))));
}

std::string StateName(v1::JobState state) {
  const std::string name = v1::JobState_Name(state);
  return name.substr(std::string("JOB_STATE_").size());
}

ProgressLine::ProgressLine(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {}

void ProgressLine::Show(const v1::Job& job) {
  const v1::Progress& progress = job.progress();
  const double fraction = progress.total() > 0 ? static_cast<double>(progress.done()) / progress.total() : 0;
  const std::string counts =
      progress.total() > 0 ? absl::StrCat(progress.done(), "/", progress.total(), " ", progress.unit()) : "";
  const auto now = std::chrono::steady_clock::now();
  const std::string elapsed = Elapsed(now - start_);
  if (job.state() != rate_state_) {
    rate_state_ = job.state();
    rate_start_ = now;
    rate_start_done_ = progress.done();
  }
  const std::string rate =
      RateAndEta(progress.done() - rate_start_done_, progress.total() - progress.done(), progress.unit(),
                 std::chrono::duration<double>(now - rate_start_).count());
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    out_ << absl::StrFormat("\r\033[K%s %-13s [%s%s] %s  %s%s", job.job_id(), StateName(job.state()),
                            std::string(filled, '#'), std::string(kWidth - filled, '.'), counts, elapsed,
                            rate.empty() ? "" : "  " + rate)
         << std::flush;
    drawn_ = true;
    return;
  }
  const int quarter = static_cast<int>(fraction * 4);
  if (job.state() == last_state_ && quarter == last_quarter_) return;
  last_state_ = job.state();
  last_quarter_ = quarter;
  out_ << job.job_id() << " " << StateName(job.state());
  if (!counts.empty()) out_ << " " << counts;
  out_ << " (" << elapsed << (rate.empty() ? "" : ", " + rate) << ")\n" << std::flush;
}

void ProgressLine::Done() {
  if (terminal_ && drawn_) out_ << "\n" << std::flush;
  drawn_ = false;
}

std::string MetricsTable(const v1::Job& job) {
  const v1::Metrics& metrics = job.metrics();
  if (metrics.variants().empty()) return "";
  const v1::VariantMetrics* fp32 = Find(metrics, "fp32");
  const v1::VariantMetrics* simulated = Find(metrics, "int8_simulated");
  const v1::VariantMetrics* int8 = Find(metrics, "int8");
  const v1::PtqSpec& ptq = job.config().ptq();
  std::string table = absl::StrCat(
      "| model | FP32 top-1/top-5 | method | int8 simulated top-1/top-5 | int8 top-1/top-5 | int8 top-1 agreement |\n",
      "|---|---|---|---|---|---|\n");
  absl::StrAppend(&table, "| ", job.name().empty() ? job.job_id() : job.name(), " | ", TopOneFive(fp32), " | PTQ ",
                  ptq.activation_quantizer(), " + ", ptq.weight_quantizer(), " | ", TopOneFive(simulated), " | ",
                  TopOneFive(int8), " | ",
                  int8 == nullptr ? "-" : absl::StrFormat("%.1f%%", int8->agreement_top1()), " |\n");
  const int64_t count = fp32 != nullptr ? fp32->count() : 0;
  absl::StrAppend(&table, "\n", count, " images of ", metrics.dataset(), ".");
  if (fp32 != nullptr && int8 != nullptr && fp32->images_per_second() > 0) {
    absl::StrAppend(&table, absl::StrFormat(" int8 speed-up during evaluation: %.2fx (%.0f vs %.0f images/s).",
                                            int8->images_per_second() / fp32->images_per_second(),
                                            int8->images_per_second(), fp32->images_per_second()));
  }
  absl::StrAppend(&table, "\n");
  return table;
}

std::string JobSummary(const v1::Job& job) {
  using google::protobuf::util::TimeUtil;
  std::string text = absl::StrCat("job:      ", job.job_id(), job.name().empty() ? "" : absl::StrCat(" (", job.name(), ")"),
                                  "\nstate:    ", StateName(job.state()));
  if (job.progress().total() > 0) {
    absl::StrAppend(&text, " (", job.progress().done(), "/", job.progress().total(), " ", job.progress().unit(), ")");
  }
  // Every caller is tenant "default" on a server without --auth-token-file: said only otherwise.
  if (!job.tenant().empty() && job.tenant() != "default") absl::StrAppend(&text, "\ntenant:   ", job.tenant());
  absl::StrAppend(&text, "\nmodel:    ", job.config().model().model_id(), "\nptq:      ",
                  job.config().ptq().activation_quantizer(), ", ", job.config().ptq().weight_quantizer());
  if (const std::string& from_job = job.config().calibration().from_job(); !from_job.empty()) {
    absl::StrAppend(&text, " (calibration of ", from_job, ")");
  }
  absl::StrAppend(&text, "\ncreated:  ", TimeUtil::ToString(job.created_at()), "\n");
  if (job.has_finished_at()) absl::StrAppend(&text, "finished: ", TimeUtil::ToString(job.finished_at()), "\n");
  if (!job.error().empty()) absl::StrAppend(&text, "error:    ", job.error(), "\n");
  if (!job.artifacts().empty()) absl::StrAppend(&text, "files:    ", job.artifacts_size(), " (ptq-client download ", job.job_id(), " --out DIR)\n");
  const std::string table = MetricsTable(job);
  if (!table.empty()) absl::StrAppend(&text, "\n", table);
  return text;
}

}  // namespace ptq::client
