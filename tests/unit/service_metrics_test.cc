// The server's metrics: what the text exposition holds after known observations, the method
// labels calls get, the job store's error counts and the HTTP endpoint that serves them.
#include "metrics/service_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "grpc/rpc_metrics.h"
#include "http_get.h"
#include "metrics/metered_job_store.h"
#include "metrics/metrics_http_endpoint.h"
#include "test_env.h"

namespace ptq::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

BuildInfo TestBuild() { return BuildInfo{"0.1.0", "abc123", "1.13.0", "2.6.3", "avx2"}; }

TEST(ServiceMetricsTest, HistogramsAndCountersHoldWhatWasObserved) {
  ServiceMetrics metrics(TestBuild());
  metrics.JobRunEnded("SUCCEEDED", 3);
  metrics.JobRunEnded("SUCCEEDED", 40);
  metrics.JobRunEnded("FAILED", 0.5);
  metrics.ImagesCalibrated(320, 2.5);
  metrics.ImagesCalibrated(64, 0.5);
  metrics.RpcHandled("GetJob", "OK", 0.002);
  metrics.RpcHandled("GetJob", "NOT_FOUND", 0.003);
  metrics.RpcHandled("GetJob", "OK", 0.02);
  metrics.BytesReceived("model_upload", 1000);
  metrics.BytesReceived("model_upload", 24);
  const std::string text = metrics.TextExposition();
  // Cumulative buckets: 3 s is under 5 (and not 2), 40 s under 60 (and not 30).
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_bucket{state=\"SUCCEEDED\",le=\"2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_bucket{state=\"SUCCEEDED\",le=\"5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_bucket{state=\"SUCCEEDED\",le=\"30\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_bucket{state=\"SUCCEEDED\",le=\"60\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_count{state=\"SUCCEEDED\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_sum{state=\"SUCCEEDED\"} 43\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_run_duration_seconds_count{state=\"FAILED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_calibration_images_total 384\n"));
  EXPECT_THAT(text, HasSubstr("ptq_calibration_seconds_total 3\n"));
  EXPECT_THAT(text, HasSubstr("ptq_rpc_handled_total{code=\"OK\",method=\"GetJob\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ptq_rpc_handled_total{code=\"NOT_FOUND\",method=\"GetJob\"} 1\n"));
  // 2 ms and 3 ms are under 5 ms, 20 ms is not.
  EXPECT_THAT(text, HasSubstr("ptq_rpc_duration_seconds_bucket{method=\"GetJob\",le=\"0.005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ptq_rpc_duration_seconds_bucket{method=\"GetJob\",le=\"0.025\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("ptq_received_bytes_total{kind=\"model_upload\"} 1024\n"));
  EXPECT_THAT(text, HasSubstr("ptq_build_info{commit=\"abc123\",libtorch=\"1.13.0\",onednn=\"2.6.3\","
                              "onednn_isa=\"avx2\",version=\"0.1.0\"} 1\n"));
  // No gauges of work until something reports it.
  EXPECT_THAT(text, Not(HasSubstr("ptq_jobs{")));
}

TEST(ServiceMetricsTest, WorkGaugesAreReadAtEachScrape) {
  ServiceMetrics metrics(TestBuild());
  WorkSnapshot work;
  work.jobs_by_state = {{"QUEUED", 2}, {"CALIBRATING", 1}};
  work.queued_work_items = 3;
  work.busy_workers = 1;
  work.workers = 4;
  metrics.ReadWorkAtScrape([&work] { return work; });
  std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("ptq_jobs{state=\"QUEUED\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("ptq_jobs{state=\"CALIBRATING\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_work_queue_items 3\n"));
  EXPECT_THAT(text, HasSubstr("ptq_workers{state=\"busy\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_workers{state=\"idle\"} 3\n"));
  work.jobs_by_state["QUEUED"] = 0;
  work.busy_workers = 4;
  text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("ptq_jobs{state=\"QUEUED\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ptq_workers{state=\"idle\"} 0\n"));
}

TEST(RpcMethodLabelTest, OnlyKnownMethodsBecomeLabels) {
  EXPECT_EQ(RpcMethodLabel("/ptq.v1.QuantService/GetJob"), "GetJob");
  EXPECT_EQ(RpcMethodLabel("/ptq.v1.QuantService/StreamCalibrationBatch"), "StreamCalibrationBatch");
  EXPECT_EQ(RpcMethodLabel("/grpc.health.v1.Health/Check"), "grpc.health.v1.Health/Check");
  EXPECT_EQ(RpcMethodLabel("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  EXPECT_EQ(RpcMethodLabel("/ptq.v1.QuantService/NoSuchMethod"), "unknown");
  EXPECT_EQ(RpcMethodLabel("/made.up.Service/Anything"), "unknown");
  EXPECT_EQ(RpcMethodLabel("garbage"), "unknown");
}

TEST(MeteredJobStoreTest, CountsTheWrappedStoresErrorsByOperation) {
  testing::TempDir dir;
  ServiceMetrics metrics(TestBuild());
  absl::StatusOr<std::unique_ptr<JobStore>> sqlite = OpenJobStore("sqlite:" + (dir.path() / "jobs.sqlite").string());
  ASSERT_TRUE(sqlite.ok()) << sqlite.status();
  MeteredJobStore store(*std::move(sqlite), &metrics);
  v1::Job job;
  job.set_job_id("job-1");
  ASSERT_TRUE(store.Insert(job).ok());
  EXPECT_FALSE(store.Insert(job).ok());  // the same id twice
  job.set_job_id("job-unknown");
  EXPECT_EQ(store.Update(job).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store.LoadAll().ok());
  const std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("ptq_job_store_errors_total{operation=\"insert\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ptq_job_store_errors_total{operation=\"update\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("operation=\"load\"")));
}

TEST(MetricsHttpEndpointTest, ServesGetMetricsOnlyAndSurvivesBadRequests) {
  int scrapes = 0;
  absl::StatusOr<std::unique_ptr<MetricsHttpEndpoint>> endpoint =
      MetricsHttpEndpoint::Start("127.0.0.1:0", [&scrapes] { return "ptq_scrapes " + std::to_string(++scrapes) + "\n"; });
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_GT((*endpoint)->port(), 0);
  const std::string address = "127.0.0.1:" + std::to_string((*endpoint)->port());

  testing::HttpResponse response = testing::HttpGet(address, "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ptq_scrapes 1\n");
  EXPECT_EQ(testing::HttpGet(address, "/").status, 404);
  EXPECT_EQ(testing::HttpGet(address, "/metrics/../etc").status, 404);
  EXPECT_EQ(testing::HttpExchange(address, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status, 405);
  EXPECT_EQ(testing::HttpExchange(address, std::string("\x00\x01\xff", 3)).status, 400);
  // Past 8 KiB the endpoint answers without reading the rest (the reset may cut the answer).
  EXPECT_NE(testing::HttpExchange(address, std::string(20000, 'A')).status, 200);
  response = testing::HttpGet(address, "/metrics?name[]=x");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ptq_scrapes 2\n");

  EXPECT_EQ(MetricsHttpEndpoint::Start("127.0.0.1", [] { return ""; }).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsHttpEndpoint::Start(address, [] { return ""; }).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ptq::server
