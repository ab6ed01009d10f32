#include "job_evaluations.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data_paths.h"
#include "job_config.h"
#include "job_protos.h"
#include "job_states.h"
#include "ptq/core/torchscript_evaluation.h"
#include "spdlog/spdlog.h"

namespace ptq::server {
namespace fs = std::filesystem;

JobEvaluations::JobEvaluations(Options options, const ModelStore* models, GetJob get_job,
                               ArtifactsChanged artifacts_changed)
    : options_(std::move(options)),
      models_(models),
      get_job_(std::move(get_job)),
      artifacts_changed_(std::move(artifacts_changed)) {}

void JobEvaluations::KeepSession(const std::string& job_id, std::shared_ptr<core::QuantizationSession> session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  sessions_.push_front(Cached{job_id, std::move(session)});
  if (static_cast<int>(sessions_.size()) > options_.cached_sessions) sessions_.pop_back();
}

void JobEvaluations::ForgetSession(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  sessions_.remove_if([&](const Cached& cached) { return cached.job_id == job_id; });
}

std::shared_ptr<core::QuantizationSession> JobEvaluations::CachedSession(const std::string& job_id,
                                                                         std::shared_ptr<std::mutex>* in_use) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  for (const Cached& cached : sessions_) {
    if (cached.job_id == job_id) {
      *in_use = cached.in_use;
      return cached.session;
    }
  }
  return nullptr;
}

absl::Status JobEvaluations::Check(const v1::EvaluateRequest& request) const {
  for (const std::string& variant : request.variants()) {
    if (variant != "fp32" && variant != "int8_simulated" && variant != "int8") {
      return absl::InvalidArgumentError(
          absl::StrCat("variants: \"", variant, "\" is not one of \"fp32\", \"int8_simulated\", \"int8\""));
    }
  }
  if (request.has_limit() && request.limit() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be >= 0, got ", request.limit()));
  }
  if (request.target_case() == v1::EvaluateRequest::kJobId) {
    absl::StatusOr<v1::Job> job = get_job_(request.job_id());
    if (!job.ok()) return job.status();
    if (job->state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(absl::StrCat("job ", job->job_id(), " is ", StateName(job->state()),
                                                        "; only SUCCEEDED jobs have models to evaluate"));
    }
  } else if (request.target_case() == v1::EvaluateRequest::kModelId) {
    if (absl::StatusOr<v1::Model> model = models_->Get(request.model_id(), TenantScope::All()); !model.ok()) {
      return model.status();
    }
    for (const std::string& variant : request.variants()) {
      if (variant != "fp32") {
        return absl::InvalidArgumentError(
            absl::StrCat("variants: an uploaded model has only \"fp32\", not \"", variant, "\""));
      }
    }
  } else {
    return absl::InvalidArgumentError("job_id or model_id is required");
  }
  if (absl::StatusOr<fs::path> path = ResolveDataPath(options_.data_root, request.dataset(), "dataset"); !path.ok()) {
    return path.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Metrics> JobEvaluations::Run(const v1::EvaluateRequest& request, const std::atomic<bool>* cancelled,
                                                const Progress& progress) {
  const bool for_job = request.target_case() == v1::EvaluateRequest::kJobId;
  // The job's own preprocessing, or the request's for an uploaded model.
  v1::InputSpec input = request.input();
  std::string backend;
  if (for_job) {
    absl::StatusOr<v1::Job> job = get_job_(request.job_id());
    if (!job.ok()) return job.status();
    input = job->config().input();
    backend = job->config().ptq().backend();
  }
  absl::StatusOr<core::PreprocessSpec> preprocess = ResolveInput(&input);
  if (!preprocess.ok()) return preprocess.status();
  absl::StatusOr<core::DataSpec> spec = ResolveEvaluationData(options_.data_root, request.dataset(), request.format(),
                                                              request.has_limit() ? request.limit() : 0, *preprocess);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::unique_ptr<core::BatchSource>> data = core::OpenDataset(*spec);
  if (!data.ok()) return data.status();

  std::vector<std::string> variants(request.variants().begin(), request.variants().end());
  const fs::path result_dir = options_.results_dir / request.job_id();
  std::shared_ptr<std::mutex> in_use;
  std::shared_ptr<core::QuantizationSession> session = for_job ? CachedSession(request.job_id(), &in_use) : nullptr;
  if (variants.empty()) {
    variants = for_job ? std::vector<std::string>{"fp32", "int8_simulated", "int8"} : std::vector<std::string>{"fp32"};
    if (for_job && session == nullptr) variants.erase(variants.begin() + 1);
  }
  const bool wants_simulated = std::count(variants.begin(), variants.end(), "int8_simulated") > 0;
  absl::StatusOr<std::vector<core::VariantAccuracy>> metrics;
  if (wants_simulated) {
    if (session == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "variant int8_simulated of job ", request.job_id(),
          " needs its calibrated session, which this server process no longer holds (restarted, or more than ",
          options_.cached_sessions, " jobs since); fp32 and int8 run from the job's files"));
    }
    std::lock_guard<std::mutex> session_lock(*in_use);
    metrics = session->Evaluate(**data, progress, cancelled, (result_dir / core::kInt8ModelFile).string());
  } else {
    std::vector<core::TorchScriptVariant> files;
    // fp32 always runs: it is the reference of the agreement figures.
    for (const std::string& variant : {std::string("fp32"), std::string("int8")}) {
      if (variant != "fp32" && std::count(variants.begin(), variants.end(), variant) == 0) continue;
      const fs::path path = !for_job ? models_->ModelFile(request.model_id())
                            : result_dir / (variant == "fp32" ? core::kFp32ModelFile : core::kInt8ModelFile);
      files.push_back({variant, path.string(), variant == "int8" ? backend : ""});
    }
    metrics = core::EvaluateTorchScriptFiles(files, **data, progress, cancelled);
  }
  if (!metrics.ok()) return metrics.status();
  std::vector<core::VariantAccuracy> kept;
  for (const core::VariantAccuracy& accuracy : *metrics) {
    if (std::count(variants.begin(), variants.end(), accuracy.variant) > 0) kept.push_back(accuracy);
  }
  v1::Metrics result;
  result.set_dataset(request.dataset());
  for (const core::VariantAccuracy& accuracy : kept) *result.add_variants() = ToProto(accuracy);
  if (for_job) {
    std::lock_guard<std::mutex> report_lock(report_mutex_);
    absl::Status added = core::AddEvaluationToReport(result_dir.string(), request.dataset(), kept);
    absl::StatusOr<std::vector<core::ManifestEntry>> artifacts =
        added.ok() ? core::ReadManifest(result_dir.string()) : absl::StatusOr<std::vector<core::ManifestEntry>>(added);
    if (!artifacts.ok()) return artifacts.status();
    artifacts_changed_(request.job_id(), *artifacts);
  }
  spdlog::info("evaluation of {} {} on '{}' done ({} variants)", for_job ? "job" : "model",
               for_job ? request.job_id() : request.model_id(), request.dataset(), kept.size());
  return result;
}

}  // namespace ptq::server
