// ptq-server's RPC costs on loopback, in one run on this machine:
//  1. StreamCalibrationBatch throughput: 32x3x224x224 float batches (19.3 MB each), against
//     UploadModel of the same number of bytes (a client stream that only hashes and writes to
//     disk) as the baseline.
//  2. While a job calibrates on both cores (the bundled MobileNetV3-small on Fashion-MNIST
//     resized to 224x224, read by the server from its data root):
//     a. capacity: 100 callers calling GetJob back to back (closed loop);
//     b. 100 pollers, each calling GetJob every 100 ms (open loop);
//     c. the mix: 200 clients over every RPC, each on its own connection and period.
//     Latency is per RPC, p50/p99/max, measured from when each call was due; the server's
//     RSS and thread count before and after each load.
//  3. Baseline: the mix with one client per kind on the idle server.
//
//   build/bench/bench_server_rpc [--batches 10] [--seconds 10]
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "rpc_load.h"
#include "server_process.h"
#include "service_client.h"
#include "test_env.h"

namespace {

namespace fs = std::filesystem;
using ptq::bench::CallTimer;
using ptq::bench::ClientRole;
using ptq::bench::LoadClient;
using ptq::bench::RpcLatency;
using ptq::testing::ServiceClient;
using ptq::bench::Clock;
using std::chrono::milliseconds;

constexpr char kFashionPath[] = "fashion-mnist/t10k";

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::chrono::system_clock::time_point In(std::chrono::seconds seconds) {
  return std::chrono::system_clock::now() + seconds;
}

ptq::v1::JobConfig FashionJob(const std::string& model_id, const std::string& source, int size, int batches,
                              int batch_size) {
  ptq::v1::JobConfig config;
  config.mutable_model()->set_model_id(model_id);
  ptq::v1::InputSpec* input = config.mutable_input();
  input->set_size(size);
  input->set_resize_short(0);
  for (int c = 0; c < 3; ++c) {
    input->add_mean(72.94f);
    input->add_std(90.02f);
  }
  config.mutable_calibration()->set_source(source);
  if (source == "server") config.mutable_calibration()->set_path(kFashionPath);
  config.mutable_calibration()->set_quant_batch_num(batches);
  config.mutable_calibration()->set_quant_batch_size(batch_size);
  config.mutable_ptq()->set_activation_quantizer("HistQuantizer");
  return config;
}

// Throughput of StreamCalibrationBatch against UploadModel of the same bytes, in MB/s.
struct StreamThroughput {
  double megabytes = 0, stream_mb_s = 0, upload_mb_s = 0;
};

StreamThroughput MeasureStreaming(ServiceClient& client, const fs::path& scratch, const std::string& model_id,
                                  int batches) {
  // Random images: the transport does not care what the floats are.
  constexpr int64_t kBatchFloats = int64_t{32} * 3 * 224 * 224;
  std::string bytes(kBatchFloats * sizeof(float), '\0');
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < kBatchFloats; ++i) {
    const float value = normal(random);
    std::memcpy(&bytes[i * sizeof(float)], &value, sizeof(float));
  }
  ptq::v1::JobConfig config;
  config.mutable_model()->set_model_id(model_id);
  config.mutable_calibration()->set_source("stream");
  config.mutable_calibration()->set_quant_batch_num(batches);
  config.mutable_calibration()->set_quant_batch_size(32);
  ptq::v1::Job job;
  StreamThroughput throughput;
  if (!client.Submit(config, &job).ok()) return throughput;
  std::vector<ptq::v1::CalibrationBatch> messages(batches);
  for (ptq::v1::CalibrationBatch& message : messages) {
    message.set_job_id(job.job_id());
    for (int64_t dim : {32, 3, 224, 224}) message.mutable_tensor()->add_shape(dim);
    message.mutable_tensor()->set_data(bytes);
  }
  throughput.megabytes = batches * bytes.size() / 1e6;

  // Baseline: the same bytes through UploadModel (a model file of that size is refused as
  // TorchScript at the end, after every byte was received, hashed and written).
  const fs::path blob = scratch / "blob.bin";
  {
    std::ofstream out(blob, std::ios::binary);
    for (int i = 0; i < batches; ++i) out << bytes;
  }
  auto start = Clock::now();
  ptq::v1::Model refused;
  client.TryUpload(blob, &refused);  // refused by design (not TorchScript); the transfer is what is timed
  throughput.upload_mb_s = throughput.megabytes / Seconds(start);
  fs::remove(blob);

  ptq::v1::CalibrationSummary summary;
  start = Clock::now();
  const grpc::Status streamed = client.Stream(messages, &summary);
  throughput.stream_mb_s = throughput.megabytes / Seconds(start);
  if (!streamed.ok()) std::fprintf(stderr, "stream failed: %s\n", streamed.error_message().c_str());
  // Its calibration would compete with the loads below; the transfer is what was measured.
  grpc::ClientContext context;
  ptq::v1::CancelJobRequest cancel;
  cancel.set_job_id(job.job_id());
  client.stub().CancelJob(&context, cancel, &job);
  client.PollUntil(job.job_id(), [](const ptq::v1::Job& j) { return ptq::testing::IsFinalState(j.state()); });
  return throughput;
}

ClientRole GetJobPollers(const std::string& job_id, int clients, milliseconds period) {
  return {"GetJob", clients, period, [job_id](LoadClient& client, CallTimer& timer) {
            timer.Time("GetJob", [&] {
              grpc::ClientContext context;
              context.set_deadline(In(std::chrono::seconds(30)));
              ptq::v1::GetJobRequest request;
              request.set_job_id(job_id);
              ptq::v1::Job job;
              return client.service->GetJob(&context, request, &job);
            });
          }};
}

// Every RPC, as the platform and its users would call them while `running_job` calibrates;
// `finished_job` (SUCCEEDED) is downloaded and evaluated. 200 clients, or one of each kind.
std::vector<ClientRole> Mix(const std::string& model_id, const std::string& model_bytes, const ptq::v1::Job& running_job,
                            const ptq::v1::Job& finished_job, const ptq::testing::EncodedImages& images, bool one_each) {
  const auto count = [one_each](int clients) { return one_each ? 1 : clients; };
  const std::string running = running_job.job_id();
  const std::string finished = finished_job.job_id();
  const std::string artifact = finished_job.artifacts(0).path();
  std::vector<ClientRole> roles;
  roles.push_back(GetJobPollers(running, count(100), milliseconds(100)));
  roles.push_back({"ListJobs", count(30), milliseconds(500), [](LoadClient& client, CallTimer& timer) {
                     timer.Time("ListJobs", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(30)));
                       ptq::v1::ListJobsRequest request;
                       request.set_page_size(50);
                       ptq::v1::ListJobsResponse page;
                       return client.service->ListJobs(&context, request, &page);
                     });
                   }});
  roles.push_back({"WatchJob", count(20), milliseconds(500), [running](LoadClient& client, CallTimer& timer) {
                     // Until the first message (the job now); the watch is then closed.
                     timer.Time("WatchJob", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(30)));
                       ptq::v1::WatchJobRequest request;
                       request.set_job_id(running);
                       auto reader = client.service->WatchJob(&context, request);
                       ptq::v1::Job job;
                       if (!reader->Read(&job)) return reader->Finish();
                       context.TryCancel();
                       reader->Finish();
                       return grpc::Status::OK;
                     });
                   }});
  roles.push_back({"GetModel", count(10), milliseconds(500), [model_id](LoadClient& client, CallTimer& timer) {
                     timer.Time("GetModel", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(30)));
                       ptq::v1::GetModelRequest request;
                       request.set_model_id(model_id);
                       ptq::v1::Model model;
                       return client.service->GetModel(&context, request, &model);
                     });
                   }});
  roles.push_back({"Health.Check", count(10), milliseconds(500), [](LoadClient& client, CallTimer& timer) {
                     timer.Time("Health.Check", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(30)));
                       grpc::health::v1::HealthCheckRequest request;
                       request.set_service("ptq.v1.QuantService");
                       grpc::health::v1::HealthCheckResponse response;
                       return client.health->Check(&context, request, &response);
                     });
                   }});
  // A user submitting a stream job, sending its one batch, then changing their mind.
  ptq::v1::JobConfig stream_config = FashionJob(model_id, "stream", 32, 1, 8);
  roles.push_back(
      {"Submit+Stream+Cancel", count(10), milliseconds(1000),
       [stream_config, &images](LoadClient& client, CallTimer& timer) {
         ptq::v1::Job job;
         timer.Time("SubmitQuantJob", [&] {
           grpc::ClientContext context;
           context.set_deadline(In(std::chrono::seconds(30)));
           ptq::v1::SubmitQuantJobRequest request;
           *request.mutable_config() = stream_config;
           return client.service->SubmitQuantJob(&context, request, &job);
         });
         if (job.job_id().empty()) return;
         timer.Time("StreamCalibrationBatch", [&] {
           grpc::ClientContext context;
           context.set_deadline(In(std::chrono::seconds(30)));
           ptq::v1::CalibrationSummary summary;
           auto writer = client.service->StreamCalibrationBatch(&context, &summary);
           for (const ptq::v1::CalibrationBatch& batch : ptq::testing::ImageBatches(job.job_id(), images, 1, 8)) {
             if (!writer->Write(batch)) break;
           }
           writer->WritesDone();
           return writer->Finish();
         });
         timer.Time("CancelJob", [&] {
           grpc::ClientContext context;
           context.set_deadline(In(std::chrono::seconds(30)));
           ptq::v1::CancelJobRequest request;
           request.set_job_id(job.job_id());
           ptq::v1::Job cancelled;
           return client.service->CancelJob(&context, request, &cancelled);
         });
       }});
  roles.push_back({"DownloadArtifact", count(10), milliseconds(1000), [finished, artifact](LoadClient& client, CallTimer& timer) {
                     timer.Time("DownloadArtifact", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(30)));
                       ptq::v1::DownloadArtifactRequest request;
                       request.set_job_id(finished);
                       request.set_path(artifact);
                       auto reader = client.service->DownloadArtifact(&context, request);
                       ptq::v1::ArtifactChunk chunk;
                       while (reader->Read(&chunk)) {
                       }
                       return reader->Finish();
                     });
                   }});
  roles.push_back({"UploadModel", count(5), milliseconds(2000), [&model_bytes](LoadClient& client, CallTimer& timer) {
                     timer.Time("UploadModel", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(60)));
                       ptq::v1::Model model;
                       return ptq::testing::UploadModelBytes(*client.service, context, "mobilenet_v3_small.pt",
                                                             model_bytes, &model);
                     });
                   }});
  roles.push_back({"Evaluate", count(5), milliseconds(2000), [finished](LoadClient& client, CallTimer& timer) {
                     timer.Time("Evaluate", [&] {
                       grpc::ClientContext context;
                       context.set_deadline(In(std::chrono::seconds(60)));
                       ptq::v1::EvaluateRequest request;
                       request.set_job_id(finished);
                       request.set_dataset(kFashionPath);
                       request.set_limit(64);
                       request.add_variants("int8");
                       auto reader = client.service->Evaluate(&context, request);
                       ptq::v1::EvaluateUpdate update;
                       while (reader->Read(&update)) {
                       }
                       return reader->Finish();
                     });
                   }});
  return roles;
}

struct LoadResult {
  std::map<std::string, RpcLatency> rpcs;
  ptq::bench::ProcessFootprint before, after;
  int clients = 0;
};

LoadResult Load(const ptq::testing::ServerProcess& server, const std::vector<ClientRole>& roles, double seconds) {
  LoadResult result;
  for (const ClientRole& role : roles) result.clients += role.clients;
  result.before = ptq::bench::Footprint(server.pid());
  result.rpcs = ptq::bench::RunLoad(server.address(), roles, milliseconds(static_cast<int64_t>(seconds * 1000)));
  result.after = ptq::bench::Footprint(server.pid());
  return result;
}

std::string Cell(const std::map<std::string, RpcLatency>& rpcs, const std::string& rpc) {
  const auto found = rpcs.find(rpc);
  if (found == rpcs.end()) return "-";
  const RpcLatency& latency = found->second;
  char cell[160];
  std::snprintf(cell, sizeof(cell), "%.2f / %.2f / %.1f ms, %zu calls%s", latency.p50_ms, latency.p99_ms,
                latency.max_ms, latency.calls,
                latency.errors > 0 ? (", " + std::to_string(latency.errors) + " errors").c_str() : "");
  return cell;
}

void PrintFootprints(const char* phase, const LoadResult& load) {
  std::printf("| %s (%d clients) | RSS %.0f -> %.0f MiB | threads %d -> %d |\n", phase, load.clients,
              load.before.rss_mib, load.after.rss_mib, load.before.threads, load.after.threads);
}

}  // namespace

int main(int argc, char** argv) {
  int batches = 10;
  double seconds = 10;
  CLI::App app{"ptq-server RPC throughput and latency under load, on loopback"};
  app.add_option("--batches", batches, "32x3x224x224 batches to stream")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "how long each load lasts")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  ptq::testing::TempDir root;
  ptq::testing::CopyFashionMnistTestSet(root.path() / "data" / "fashion-mnist");
  ptq::testing::ServerProcess server(root.path() / "state", {"--threads", "2", "--workers", "2", "--data-root",
                                                             (root.path() / "data").string()});
  if (server.address().empty()) return 1;
  ServiceClient client(server.address());
  const fs::path model_path = ptq::testing::ReferenceModelsDir() / "mobilenet_v3_small.pt";
  const std::string model_bytes = ptq::testing::ReadFileBytes(model_path);
  const std::string model_id = client.Upload(model_path);
  if (model_id.empty()) return 1;

  const StreamThroughput streaming = MeasureStreaming(client, root.path(), model_id, batches);

  // A finished job to download and evaluate.
  ptq::v1::Job finished;
  if (!client.Submit(FashionJob(model_id, "server", 32, 2, 32), &finished).ok()) return 1;
  finished = client.PollUntil(finished.job_id(), [](const ptq::v1::Job& j) { return ptq::testing::IsFinalState(j.state()); });
  if (finished.state() != ptq::v1::JOB_STATE_SUCCEEDED || finished.artifacts_size() == 0) {
    std::fprintf(stderr, "the small job did not succeed: %s\n", finished.error().c_str());
    return 1;
  }
  // The job that calibrates on both cores through every load; cancelled after them.
  ptq::v1::Job running;
  if (!client.Submit(FashionJob(model_id, "server", 224, 300, 32), &running).ok()) return 1;
  client.PollUntil(running.job_id(), [](const ptq::v1::Job& j) { return j.state() == ptq::v1::JOB_STATE_CALIBRATING; });

  const ptq::testing::EncodedImages images = ptq::testing::FashionMnistAsPgm(64);
  const LoadResult capacity = Load(server, {GetJobPollers(running.job_id(), 100, milliseconds(0))}, seconds);
  const LoadResult pollers = Load(server, {GetJobPollers(running.job_id(), 100, milliseconds(100))}, seconds);
  const LoadResult mix = Load(server, Mix(model_id, model_bytes, running, finished, images, false), seconds);
  ptq::v1::Job after_load;
  client.Get(running.job_id(), &after_load);
  {
    grpc::ClientContext context;
    ptq::v1::CancelJobRequest cancel;
    cancel.set_job_id(running.job_id());
    client.stub().CancelJob(&context, cancel, &running);
  }
  client.PollUntil(running.job_id(), [](const ptq::v1::Job& j) { return ptq::testing::IsFinalState(j.state()); });
  const LoadResult idle = Load(server, Mix(model_id, model_bytes, running, finished, images, true), seconds);

  std::printf("ptq-server RPC benchmark (loopback, %u cores; the job was %s after the loads)\n\n",
              std::thread::hardware_concurrency(), ptq::v1::JobState_Name(after_load.state()).c_str());
  std::printf("| StreamCalibrationBatch, %d x 32x3x224x224 float32 (%.0f MB) | %.0f MB/s | UploadModel of the same bytes: %.0f MB/s | %.2fx |\n\n",
              batches, streaming.megabytes, streaming.stream_mb_s, streaming.upload_mb_s,
              streaming.stream_mb_s / streaming.upload_mb_s);
  std::printf("GetJob capacity while the job calibrates, 100 callers back to back: %.0f calls/s, %s\n\n",
              capacity.rpcs.count("GetJob") ? capacity.rpcs.at("GetJob").calls / seconds : 0.0,
              Cell(capacity.rpcs, "GetJob").c_str());
  std::printf("p50 / p99 / max latency from when each call was due\n\n");
  std::printf("| RPC | idle server, one client of each | 100 GetJob pollers at 10/s, job calibrating | mix of %d clients, job calibrating |\n|---|---|---|---|\n",
              mix.clients);
  size_t errors = 0;
  for (const auto& [rpc, latency] : mix.rpcs) {
    errors += latency.errors;
    std::printf("| %s | %s | %s | %s |\n", rpc.c_str(), Cell(idle.rpcs, rpc).c_str(), Cell(pollers.rpcs, rpc).c_str(),
                Cell(mix.rpcs, rpc).c_str());
    if (latency.errors > 0) std::fprintf(stderr, "%s: first error: %s\n", rpc.c_str(), latency.first_error.c_str());
  }
  std::printf("\n| load | server RSS | server threads |\n|---|---|---|\n");
  PrintFootprints("capacity", capacity);
  PrintFootprints("pollers", pollers);
  PrintFootprints("mix", mix);
  PrintFootprints("idle, one of each", idle);
  return errors == 0 && after_load.state() == ptq::v1::JOB_STATE_CALIBRATING ? 0 : 1;
}
