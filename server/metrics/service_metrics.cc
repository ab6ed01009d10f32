#include "metrics/service_metrics.h"

#include <mutex>
#include <utility>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace ptq::server {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Histogram;

// Job runs take seconds (Fashion-MNIST) to an hour (AdaRound on a large model on CPU).
const Histogram::BucketBoundaries kJobSeconds = {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200};
// Unary calls take milliseconds; uploads, streams and watches last as long as their client.
const Histogram::BucketBoundaries kRpcSeconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1,     2.5,  5,     10,   30, 60, 300};

prometheus::ClientMetric GaugeValue(std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  return metric;
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

}  // namespace

struct ServiceMetrics::Families {
  explicit Families(prometheus::Registry& registry)
      : job_runs(prometheus::BuildHistogram()
                     .Name("ptq_job_run_duration_seconds")
                     .Help("Time a job run held a worker, by the state it ended in")
                     .Register(registry)),
        stages(prometheus::BuildHistogram()
                   .Name("ptq_job_stage_duration_seconds")
                   .Help("Time of each stage of a successful job run (model_load is part of calibration)")
                   .Register(registry)),
        calibration_images(prometheus::BuildCounter()
                               .Name("ptq_calibration_images_total")
                               .Help("Images calibrated on, over all successful job runs")
                               .Register(registry)
                               .Add({})),
        calibration_seconds(prometheus::BuildCounter()
                                .Name("ptq_calibration_seconds_total")
                                .Help("Seconds spent calibrating in successful job runs (images/s: the ratio of "
                                      "the rates of ptq_calibration_images_total and this)")
                                .Register(registry)
                                .Add({})),
        rpcs(prometheus::BuildCounter()
                 .Name("ptq_rpc_handled_total")
                 .Help("Calls answered, by method and status code")
                 .Register(registry)),
        rpc_seconds(prometheus::BuildHistogram()
                        .Name("ptq_rpc_duration_seconds")
                        .Help("Time from a call's start to its status, by method")
                        .Register(registry)),
        received_bytes(prometheus::BuildCounter()
                           .Name("ptq_received_bytes_total")
                           .Help("Request bytes received: model_upload, calibration_stream")
                           .Register(registry)),
        store_errors(prometheus::BuildCounter()
                         .Name("ptq_job_store_errors_total")
                         .Help("Job store operations that failed, by operation")
                         .Register(registry)),
        build_info(prometheus::BuildGauge()
                       .Name("ptq_build_info")
                       .Help("Always 1; the labels say what the server runs")
                       .Register(registry)) {}

  Family<Histogram>& job_runs;
  Family<Histogram>& stages;
  Counter& calibration_images;
  Counter& calibration_seconds;
  Family<Counter>& rpcs;
  Family<Histogram>& rpc_seconds;
  Family<Counter>& received_bytes;
  Family<Counter>& store_errors;
  Family<prometheus::Gauge>& build_info;
};

// The gauges of a WorkSnapshot, made at scrape time.
class ServiceMetrics::WorkCollector : public prometheus::Collectable {
 public:
  void SetReader(std::function<WorkSnapshot()> read) {
    std::lock_guard<std::mutex> lock(mutex_);
    read_ = std::move(read);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!read_) return {};
    const WorkSnapshot work = read_();
    prometheus::MetricFamily jobs = GaugeFamily("ptq_jobs", "Jobs now in each state");
    for (const auto& [state, count] : work.jobs_by_state) jobs.metric.push_back(GaugeValue({{"state", state}}, count));
    prometheus::MetricFamily queued =
        GaugeFamily("ptq_work_queue_items", "Job runs and evaluations waiting for a worker");
    queued.metric.push_back(GaugeValue({}, work.queued_work_items));
    prometheus::MetricFamily workers = GaugeFamily("ptq_workers", "Workers, busy (running a job or an evaluation) or idle");
    workers.metric.push_back(GaugeValue({{"state", "busy"}}, work.busy_workers));
    workers.metric.push_back(GaugeValue({{"state", "idle"}}, work.workers - work.busy_workers));
    return {std::move(jobs), std::move(queued), std::move(workers)};
  }

 private:
  mutable std::mutex mutex_;
  std::function<WorkSnapshot()> read_;
};

ServiceMetrics::ServiceMetrics(const BuildInfo& build)
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)),
      work_(std::make_shared<WorkCollector>()) {
  families_->build_info
      .Add({{"version", build.version},
            {"commit", build.commit},
            {"libtorch", build.libtorch},
            {"onednn", build.onednn},
            {"onednn_isa", build.onednn_isa}})
      .Set(1);
}

ServiceMetrics::~ServiceMetrics() = default;

void ServiceMetrics::ReadWorkAtScrape(std::function<WorkSnapshot()> read) { work_->SetReader(std::move(read)); }

void ServiceMetrics::JobRunEnded(absl::string_view state, double seconds) {
  families_->job_runs.Add({{"state", std::string(state)}}, kJobSeconds).Observe(seconds);
}

void ServiceMetrics::StageTimed(absl::string_view stage, double seconds) {
  families_->stages.Add({{"stage", std::string(stage)}}, kJobSeconds).Observe(seconds);
}

void ServiceMetrics::ImagesCalibrated(int64_t images, double seconds) {
  families_->calibration_images.Increment(static_cast<double>(images));
  families_->calibration_seconds.Increment(seconds);
}

void ServiceMetrics::RpcHandled(absl::string_view method, absl::string_view code, double seconds) {
  families_->rpcs.Add({{"method", std::string(method)}, {"code", std::string(code)}}).Increment();
  families_->rpc_seconds.Add({{"method", std::string(method)}}, kRpcSeconds).Observe(seconds);
}

void ServiceMetrics::BytesReceived(absl::string_view kind, int64_t bytes) {
  families_->received_bytes.Add({{"kind", std::string(kind)}}).Increment(static_cast<double>(bytes));
}

void ServiceMetrics::StoreError(absl::string_view operation) {
  families_->store_errors.Add({{"operation", std::string(operation)}}).Increment();
}

std::string ServiceMetrics::TextExposition() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& family : work_->Collect()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace ptq::server
