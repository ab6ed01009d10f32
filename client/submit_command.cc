// ptq-client submit: check the config locally, upload the model if the server lacks it,
// submit, stream calibration data from this machine for the client/stream sources, and with
// --wait follow the job to its end, print the fp32 vs int8 table and fetch the result
// directory into output_dir.
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "command_support.h"
#include "commands.h"
#include "job_config_file.h"
#include "job_display.h"
#include "local_dataset.h"
#include "ptq/common/sha256.h"
#include "quant_client.h"

namespace ptq::client {
namespace {

// Streams quant_batch_num batches of quant_batch_size images from the local dataset. Ctrl-C
// cancels the call (CANCELLED); `sent` counts the batches the server was sent.
absl::StatusOr<v1::CalibrationSummary> StreamLocalData(QuantClient& client, const v1::Job& job,
                                                       const LocalDataset& data, const GlobalOptions& options,
                                                       const InterruptScope& interrupt, int64_t* sent) {
  const int64_t batch_size = job.config().calibration().quant_batch_size();
  const int64_t batches = job.config().calibration().quant_batch_num();
  if (data.size() < batches * batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("calibration.path has ", data.size(), " images; quant_batch_num x quant_batch_size needs ",
                                                   batches * batch_size));
  }
  int64_t next = 0;
  const bool terminal = isatty(STDERR_FILENO) != 0 && !options.json;
  return client.StreamCalibration(
      [&](v1::CalibrationBatch* batch) -> absl::StatusOr<bool> {
        if (interrupt.interrupted()) return absl::CancelledError("interrupted");
        if (next == batches) return false;
        batch->set_job_id(job.job_id());
        if (absl::Status added = data.AddTo(next * batch_size, batch_size, batch); !added.ok()) return added;
        ++next;
        return true;
      },
      [&](int64_t count) {
        *sent = count;
        if (terminal) std::cerr << "\rstreaming calibration data: " << count << "/" << batches << " batches" << std::flush;
      });
}

// Ctrl-C while streaming: a job whose data stopped half way would wait for data that never
// comes, so it is cancelled; one whose data was all sent runs on. Says which, exits 130.
ExitCode ReportInterruptedStream(QuantClient& client, const v1::Job& job, bool stream_complete, int64_t sent,
                                 const GlobalOptions& options) {
  const std::string& job_id = job.job_id();
  if (stream_complete) {
    return ReportError("submit", absl::StrCat("interrupted after the calibration data was sent; job ", job_id,
                                              " keeps running on the server. Follow it with: ptq-client watch ", job_id),
                       kExitInterrupted, options);
  }
  const std::string stopped = absl::StrCat("interrupted while streaming calibration data (", sent, " of ",
                                           job.config().calibration().quant_batch_num(), " batches sent); ");
  absl::StatusOr<v1::Job> cancelled = client.CancelJob(job_id);
  if (!cancelled.ok()) {
    return ReportError("submit", absl::StrCat(stopped, "cancelling job ", job_id, " failed (",
                                              cancelled.status().ToString(), "): cancel it with ptq-client cancel ",
                                              job_id, ", or it waits for its data until the server gives up on it"),
                       kExitInterrupted, options);
  }
  return ReportError("submit", absl::StrCat(stopped, "job ", job_id, " is ", StateName(cancelled->state()),
                                            ", since its calibration data is incomplete"),
                     kExitInterrupted, options);
}

}  // namespace

ExitCode RunSubmit(const GlobalOptions& options, const SubmitOptions& submit) {
  // Everything local is checked before anything is sent.
  absl::StatusOr<LocalJobConfig> local = LoadJobConfig(submit.config_path);
  if (!local.ok()) return ReportError("submit", std::string(local.status().message()), kExitUsage, options);
  std::unique_ptr<LocalDataset> data;
  if (!local->local_calibration_path.empty()) {
    absl::StatusOr<std::unique_ptr<LocalDataset>> opened =
        LocalDataset::Open(local->local_calibration_path, local->config.calibration().format());
    if (!opened.ok()) {
      return ReportError("submit", absl::StrCat(submit.config_path, ": calibration.path: ", opened.status().message()),
                         kExitUsage, options);
    }
    data = *std::move(opened);
  }

  v1::JobConfig config = local->config;
  if (!local->model_path.empty()) {
    absl::StatusOr<std::string> sha256 = Sha256OfFile(local->model_path);
    if (!sha256.ok()) {
      return ReportError("submit", absl::StrCat("model.path: ", sha256.status().message()), kExitUsage, options);
    }
    config.mutable_model()->set_model_id(*sha256);  // the id the upload will get, hashed once
  }
  if (data != nullptr) {
    // The server sees a stream job; the local path means nothing to it.
    config.mutable_calibration()->set_source("stream");
    config.mutable_calibration()->clear_path();
  }
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  // The server checks the values (ranges, quantizer names, data paths) before any upload.
  absl::StatusOr<v1::Job> checked = client.SubmitQuantJob(config, "", /*validate_only=*/true);
  if (!checked.ok()) {
    if (OriginOf(checked.status()) == ErrorOrigin::kUnreachable) return ReportRpcError("submit", checked.status(), options);
    return ReportError("submit",
                       absl::StrCat(submit.config_path, ": ", checked.status().message(), " (",
                                    absl::StatusCodeToString(checked.status().code()), ")"),
                       kExitUsage, options);
  }
  if (!local->model_path.empty()) {
    absl::StatusOr<v1::Model> model = UploadIfMissing(client, local->model_path, config.model().model_id(), options);
    if (!model.ok()) return ReportRpcError("upload", model.status(), options);
  }
  absl::StatusOr<v1::Job> job = client.SubmitQuantJob(config, submit.idempotency_key);
  if (!job.ok()) return ReportRpcError("submit", job.status(), options);
  if (!options.json) std::cerr << "submitted " << job->job_id() << " (" << StateName(job->state()) << ")\n";

  if (data != nullptr && job->state() == v1::JOB_STATE_AWAITING_DATA) {
    absl::StatusOr<v1::CalibrationSummary> streamed = absl::UnknownError("not streamed");
    int64_t sent = 0;
    bool interrupted = false;
    {
      InterruptScope interrupt([&client] { client.CancelStreamingCall(); });
      streamed = StreamLocalData(client, *job, *data, options, interrupt, &sent);
      interrupted = interrupt.interrupted();
    }
    if (isatty(STDERR_FILENO) && !options.json) std::cerr << "\n";
    if (interrupted) return ReportInterruptedStream(client, *job, streamed.ok(), sent, options);
    if (!streamed.ok()) {
      // Nothing would ever complete this job's data: do not leave it waiting.
      (void)client.CancelJob(job->job_id());
      if (absl::IsInvalidArgument(streamed.status()) && streamed.status().message().find("calibration.path") == 0) {
        return ReportError("submit", absl::StrCat(streamed.status().message(), " (job ", job->job_id(), " cancelled)"),
                           kExitUsage, options);
      }
      return ReportRpcError("streaming calibration data", streamed.status(), options);
    }
    if (!options.json) {
      std::cerr << "streamed " << streamed->batches_received() << " batches (" << streamed->images_received()
                << " images)\n";
    }
  }
  if (!submit.wait) {
    if (options.json) {
      std::cout << ToJson(*job) << "\n";
    } else {
      std::cout << job->job_id() << "\n";
    }
    return kExitOk;
  }

  absl::StatusOr<v1::Job> done = FollowJob(client, job->job_id(), options);
  if (absl::IsCancelled(done.status())) {
    return ReportError("submit", std::string(done.status().message()), kExitInterrupted, options);
  }
  if (!done.ok()) return ReportRpcError("watch", done.status(), options);
  if (options.json) {
    std::cout << ToJson(*done) << "\n";
  } else {
    std::cout << done->job_id() << " " << StateName(done->state()) << "\n";
    if (!done->error().empty()) std::cout << "error: " << done->error() << "\n";
    const std::string table = MetricsTable(*done);
    if (!table.empty()) std::cout << "\n" << table;
  }
  if (done->state() == v1::JOB_STATE_SUCCEEDED && !config.output_dir().empty()) {
    const std::string out_dir = absl::StrCat(config.output_dir(), "/", done->job_id());
    GlobalOptions quiet = options;
    quiet.json = true;  // the submit's JSON document stays the only one on stdout
    std::streambuf* saved = std::cout.rdbuf(nullptr);
    const ExitCode fetched = RunDownload(quiet, done->job_id(), out_dir);
    std::cout.rdbuf(saved);
    if (fetched != kExitOk) return fetched;
    if (!options.json) std::cout << "\nresult directory: " << out_dir << "\n";
  }
  return ExitCodeOf(*done);
}

}  // namespace ptq::client
