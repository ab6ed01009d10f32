#ifndef PTQ_SERVER_METRICS_SERVICE_METRICS_H_
#define PTQ_SERVER_METRICS_SERVICE_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ptq::server {

// The versions a server runs with, exported once as ptq_build_info's labels.
struct BuildInfo {
  std::string version;
  std::string commit;
  std::string libtorch;
  std::string onednn;
  std::string onednn_isa;
};

// The job side's gauges, read at each scrape rather than kept up to date by every change.
struct WorkSnapshot {
  std::map<std::string, int> jobs_by_state;  // state name ("QUEUED", ...) -> jobs now in it
  int queued_work_items = 0;                 // job runs and evaluations waiting for a worker
  int busy_workers = 0;
  int workers = 0;
};

// The server's Prometheus metrics (prometheus-cpp): counters and histograms the server updates
// as things happen, gauges read from a WorkSnapshot when scraped, and ptq_build_info. Names and
// labels are listed in the README ("Metrics"); every label takes values from a fixed set (no
// ids, no tenants), so no client can grow the number of series. Thread-safe.
class ServiceMetrics {
 public:
  explicit ServiceMetrics(const BuildInfo& build);
  ~ServiceMetrics();
  ServiceMetrics(const ServiceMetrics&) = delete;
  ServiceMetrics& operator=(const ServiceMetrics&) = delete;

  // `read` is called at every scrape (TextExposition) for the gauges; nullptr: no gauges.
  void ReadWorkAtScrape(std::function<WorkSnapshot()> read);

  // A job run ended in `state` (SUCCEEDED, FAILED, CANCELLED) after `seconds` on a worker.
  void JobRunEnded(absl::string_view state, double seconds);
  // A successful run's stages: "model_load", "calibration", "export", "evaluation".
  void StageTimed(absl::string_view stage, double seconds);
  void ImagesCalibrated(int64_t images, double seconds);
  // One call answered: its method ("GetJob", "grpc.health.v1.Health/Check"; "unknown" for
  // anything else), status code name and time from its start to its status.
  void RpcHandled(absl::string_view method, absl::string_view code, double seconds);
  // Request bytes received: "model_upload" or "calibration_stream".
  void BytesReceived(absl::string_view kind, int64_t bytes);
  // The job store refused an operation ("insert", "update", "load", "quarantine").
  void StoreError(absl::string_view operation);

  // Everything in the text exposition format, as a scrape returns it.
  std::string TextExposition() const;

 private:
  struct Families;
  class WorkCollector;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::shared_ptr<WorkCollector> work_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_METRICS_SERVICE_METRICS_H_
