#include "commands.h"

#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "command_support.h"
#include "job_display.h"
#include "nlohmann/json.hpp"
#include "ptq/common/sha256.h"
#include "quant_client.h"
#include "report_display.h"

namespace ptq::client {
namespace {

void PrintModel(const v1::Model& model, const GlobalOptions& options) {
  if (options.json) {
    std::cout << ToJson(model) << "\n";
    return;
  }
  std::cout << "model_id:   " << model.model_id() << "\n"
            << "file:       " << model.filename() << " (" << model.size_bytes() << " bytes)\n"
            << "parameters: " << model.parameter_count() << "\n"
            << "forward:    " << model.forward_schema() << "\n"
            << "status:     " << (model.already_present() ? "already on the server" : "uploaded") << "\n";
}

// Fetches `job_id` into `job` for a command that needs a SUCCEEDED job (`what`: what only those
// have). nullopt when it did; otherwise the exit code to end with, the reason printed.
std::optional<ExitCode> FetchSucceededJob(QuantClient& client, const std::string& job_id, const std::string& command,
                                          const char* what, const GlobalOptions& options, v1::Job* job) {
  absl::StatusOr<v1::Job> fetched = client.GetJob(job_id);
  if (!fetched.ok()) return ReportRpcError(command, fetched.status(), options);
  if (fetched->state() != v1::JOB_STATE_SUCCEEDED) {
    return ReportError(command,
                       absl::StrCat("job ", job_id, " is ", StateName(fetched->state()), "; only SUCCEEDED jobs have ", what),
                       kExitJobFailed, options);
  }
  *job = *std::move(fetched);
  return std::nullopt;
}

void PrintJobEnd(const v1::Job& job, const GlobalOptions& options) {
  if (options.json) {
    std::cout << ToJson(job) << "\n";
    return;
  }
  std::cout << job.job_id() << " " << StateName(job.state()) << "\n";
  if (!job.error().empty()) std::cout << "error: " << job.error() << "\n";
  const std::string table = MetricsTable(job);
  if (!table.empty()) std::cout << "\n" << table;
}

}  // namespace

ExitCode RunHealth(const GlobalOptions& options, const std::string& service) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<std::string> health = client.CheckHealth(service);
  if (!health.ok()) return ReportRpcError("health", health.status(), options);
  if (options.json) {
    std::cout << nlohmann::json{{"server", options.server}, {"service", service}, {"status", *health}}.dump() << "\n";
  } else {
    std::cout << options.server << (service.empty() ? "" : " " + service) << ": " << *health << "\n";
  }
  return *health == "SERVING" ? kExitOk : kExitError;
}

ExitCode RunUpload(const GlobalOptions& options, const std::string& model_path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(model_path, error)) {
    return ReportError("upload", absl::StrCat("model file '", model_path, "' does not exist"), kExitUsage, options);
  }
  absl::StatusOr<std::string> sha256 = Sha256OfFile(model_path);
  if (!sha256.ok()) {
    return ReportError("upload", absl::StrCat("cannot read '", model_path, "'"), kExitError, options);
  }
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::Model> model = UploadIfMissing(client, model_path, *sha256, options);
  if (!model.ok()) return ReportRpcError("upload", model.status(), options);
  PrintModel(*model, options);
  return kExitOk;
}

ExitCode RunStatus(const GlobalOptions& options, const std::string& job_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::Job> job = client.GetJob(job_id);
  if (!job.ok()) return ReportRpcError("status", job.status(), options);
  std::cout << (options.json ? ToJson(*job) + "\n" : JobSummary(*job));
  return kExitOk;
}

ExitCode RunWatch(const GlobalOptions& options, const std::string& job_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::Job> job = FollowJob(client, job_id, options);
  if (absl::IsCancelled(job.status())) {
    return ReportError("watch", std::string(job.status().message()), kExitInterrupted, options);
  }
  if (!job.ok()) return ReportRpcError("watch", job.status(), options);
  PrintJobEnd(*job, options);
  return ExitCodeOf(*job);
}

ExitCode RunList(const GlobalOptions& options, const std::vector<std::string>& states, int limit) {
  v1::ListJobsRequest request;
  for (const std::string& state : states) {
    v1::JobState parsed;
    if (!v1::JobState_Parse("JOB_STATE_" + absl::AsciiStrToUpper(state), &parsed)) {
      return ReportError("list",
                         absl::StrCat("--state '", state,
                                      "' is not a job state (queued, awaiting_data, calibrating, exporting, evaluating, "
                                      "succeeded, failed, cancelled)"),
                         kExitUsage, options);
    }
    request.add_states(parsed);
  }
  request.set_page_size(std::min(limit, 500));
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  v1::ListJobsResponse all;
  do {
    absl::StatusOr<v1::ListJobsResponse> page = client.ListJobs(request);
    if (!page.ok()) return ReportRpcError("list", page.status(), options);
    for (const v1::Job& job : page->jobs()) {
      if (all.jobs_size() < limit) *all.add_jobs() = job;
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty() && all.jobs_size() < limit);
  if (options.json) {
    std::cout << ToJson(all) << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat("%-20s %-14s %-16s %-24s %s\n", "JOB", "STATE", "PROGRESS", "NAME", "CREATED");
  for (const v1::Job& job : all.jobs()) {
    const std::string progress =
        job.progress().total() > 0 ? absl::StrCat(job.progress().done(), "/", job.progress().total(), " ", job.progress().unit()) : "";
    std::cout << absl::StrFormat("%-20s %-14s %-16s %-24s %s\n", job.job_id(), StateName(job.state()), progress,
                                 job.name(), google::protobuf::util::TimeUtil::ToString(job.created_at()));
  }
  return kExitOk;
}

ExitCode RunCancel(const GlobalOptions& options, const std::string& job_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::Job> job = client.CancelJob(job_id);
  if (!job.ok()) return ReportRpcError("cancel", job.status(), options);
  if (options.json) {
    std::cout << ToJson(*job) << "\n";
  } else if (job->state() == v1::JOB_STATE_CANCELLED) {
    std::cout << job_id << " CANCELLED\n";
  } else {
    std::cout << job_id << " is stopping (was " << StateName(job->state()) << "); ptq-client watch " << job_id
              << " shows when it has\n";
  }
  return kExitOk;
}

ExitCode RunDelete(const GlobalOptions& options, const std::string& job_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  if (absl::Status deleted = client.DeleteJob(job_id); !deleted.ok()) return ReportRpcError("delete", deleted, options);
  std::cout << (options.json ? "{\"job_id\": \"" + job_id + "\", \"deleted\": true}\n" : job_id + " deleted\n");
  return kExitOk;
}

ExitCode RunModels(const GlobalOptions& options) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::ListModelsResponse> models = client.ListModels();
  if (!models.ok()) return ReportRpcError("models", models.status(), options);
  if (options.json) {
    std::cout << ToJson(*models) << "\n";
    return kExitOk;
  }
  for (const v1::Model& model : models->models()) {
    std::cout << absl::StrFormat("%s  %10d bytes  %s  %s\n", model.model_id(), model.size_bytes(),
                                 google::protobuf::util::TimeUtil::ToString(model.uploaded_at()), model.filename());
  }
  return kExitOk;
}

ExitCode RunDeleteModel(const GlobalOptions& options, const std::string& model_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::DeleteModelResponse> deleted = client.DeleteModel(model_id);
  if (!deleted.ok()) return ReportRpcError("delete-model", deleted.status(), options);
  if (options.json) {
    std::cout << ToJson(*deleted) << "\n";
  } else {
    std::cout << model_id << (deleted->bytes_removed() ? " deleted\n" : " deleted for this tenant (another keeps it)\n");
  }
  return kExitOk;
}

ExitCode RunLogs(const GlobalOptions& options, const std::string& job_id) {
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  absl::StatusOr<v1::JobLogs> logs = client.GetJobLogs(job_id);
  if (!logs.ok()) return ReportRpcError("logs", logs.status(), options);
  if (options.json) {
    std::cout << ToJson(*logs) << "\n";
  } else {
    for (const std::string& line : logs->lines()) std::cout << line << "\n";
  }
  return kExitOk;
}

ExitCode RunEvaluate(const GlobalOptions& options, const EvaluateOptions& evaluate) {
  v1::EvaluateRequest request;
  request.set_job_id(evaluate.job_id);
  request.set_dataset(evaluate.data);
  request.set_format(evaluate.format);
  if (evaluate.limit > 0) request.set_limit(evaluate.limit);
  for (const std::string& variant : evaluate.variants) request.add_variants(variant);
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  const bool terminal = isatty(STDERR_FILENO) != 0 && !options.json;
  absl::StatusOr<v1::Metrics> metrics = client.Evaluate(request, [&](const v1::Progress& progress) {
    if (terminal) std::cerr << "\revaluating: " << progress.done() << "/" << progress.total() << " images" << std::flush;
  });
  if (terminal) std::cerr << "\n";
  if (!metrics.ok()) return ReportRpcError("evaluate", metrics.status(), options);
  if (options.json) {
    std::cout << ToJson(*metrics) << "\n";
    return kExitOk;
  }
  absl::StatusOr<v1::Job> job = client.GetJob(evaluate.job_id);
  v1::Job shown = job.ok() ? *job : v1::Job();
  *shown.mutable_metrics() = *metrics;
  std::cout << MetricsTable(shown);
  return kExitOk;
}

ExitCode RunDownload(const GlobalOptions& options, const std::string& job_id, const std::string& out_dir) {
  namespace fs = std::filesystem;
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  v1::Job job;
  if (std::optional<ExitCode> failed = FetchSucceededJob(client, job_id, "download", "files", options, &job)) {
    return *failed;
  }
  nlohmann::json files = nlohmann::json::array();
  for (const v1::Artifact& listed : job.artifacts()) {
    const fs::path destination = fs::path(out_dir) / listed.path();
    std::error_code error;
    fs::create_directories(destination.parent_path(), error);
    if (error) {
      return ReportError("download", absl::StrCat("cannot create '", destination.parent_path().string(), "'"),
                         kExitError, options);
    }
    absl::StatusOr<v1::Artifact> header = client.DownloadArtifact(job_id, listed.path(), destination.string());
    if (!header.ok()) return ReportRpcError("download " + listed.path(), header.status(), options);
    absl::StatusOr<std::string> digest = Sha256OfFile(destination.string());
    if (!digest.ok() || *digest != header->sha256() || (!listed.sha256().empty() && *digest != listed.sha256())) {
      return ReportError("download",
                         absl::StrCat(listed.path(), ": sha256 mismatch (got ", digest.ok() ? *digest : "unreadable",
                                      ", server said ", header->sha256(), ")"),
                         kExitError, options);
    }
    files.push_back({{"path", listed.path()}, {"sha256", *digest}, {"size_bytes", header->size_bytes()}});
    if (!options.json) std::cerr << "  " << listed.path() << " (" << header->size_bytes() << " bytes) ok\n";
  }
  // MANIFEST was checked like every file; now every file against MANIFEST.
  std::ifstream manifest(fs::path(out_dir) / "MANIFEST");
  std::string line;
  while (std::getline(manifest, line)) {
    const std::string sha = line.substr(0, line.find(' '));
    const std::string path = line.substr(line.find("  ") + 2);
    absl::StatusOr<std::string> digest = Sha256OfFile((fs::path(out_dir) / path).string());
    if (!digest.ok() || *digest != sha) {
      return ReportError("download", absl::StrCat(path, " does not match MANIFEST"), kExitError, options);
    }
  }
  if (options.json) {
    std::cout << nlohmann::json{{"job_id", job_id}, {"out_dir", out_dir}, {"files", files}}.dump() << "\n";
  } else {
    std::cout << "downloaded " << files.size() << " files of " << job_id << " to " << out_dir
              << " (sha256 verified)\n";
  }
  return kExitOk;
}

ExitCode RunReport(const GlobalOptions& options, const std::string& job_id) {
  namespace fs = std::filesystem;
  QuantClient client(options.server, options.credentials, options.token, options.timeout);
  v1::Job job;
  if (std::optional<ExitCode> failed = FetchSucceededJob(client, job_id, "report", "a report", options, &job)) {
    return *failed;
  }
  // A private folder (mkdtemp: mode 0700, a fresh name) for the one file.
  std::error_code error;
  std::string folder = (fs::temp_directory_path(error) / "ptq-client-report-XXXXXX").string();
  if (mkdtemp(folder.data()) == nullptr) {
    return ReportError("report",
                       absl::StrCat("cannot create a temporary folder in ", fs::temp_directory_path(error).string()),
                       kExitError, options);
  }
  const fs::path local = fs::path(folder) / "report.json";
  absl::StatusOr<v1::Artifact> header = client.DownloadArtifact(job_id, "report.json", local.string());
  nlohmann::json report;
  if (header.ok()) {
    std::ifstream in(local);
    report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  }
  fs::remove_all(folder, error);
  if (!header.ok()) return ReportRpcError("report", header.status(), options);
  if (report.is_discarded() || !report.is_object()) {
    return ReportError("report", absl::StrCat("the server's report.json of ", job_id, " is not a JSON object"),
                       kExitError, options);
  }
  if (options.json) {
    std::cout << report.dump() << "\n";
    return kExitOk;
  }
  try {
    std::cout << ReportText(report);
  } catch (const nlohmann::json::exception& e) {
    return ReportError("report", absl::StrCat("the server's report.json of ", job_id, " is malformed: ", e.what()),
                       kExitError, options);
  }
  return kExitOk;
}

}  // namespace ptq::client
