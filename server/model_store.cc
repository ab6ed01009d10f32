#include "model_store.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "ptq/core/torchscript_inspect.h"

namespace ptq::server {
namespace fs = std::filesystem;
namespace {

constexpr char kModelFileName[] = "model.pt";
constexpr char kRecordFileName[] = "model.json";
constexpr char kOwnersFolder[] = "owners";
constexpr size_t kMaxFilenameLength = 255;

// Unique within this process, which is the only writer of the state directory.
std::string NewStagingName() {
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return absl::StrCat("upload-", getpid(), "-", counter.fetch_add(1), "-", now);
}

absl::Status WriteRecord(const fs::path& path, const v1::Model& record) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  if (!google::protobuf::util::MessageToJsonString(record, &json, options).ok()) {
    return absl::InternalError("cannot serialise model record");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write '", path.string(), "'"));
  return absl::OkStatus();
}

absl::StatusOr<v1::Model> ReadRecord(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path.string(), "'"));
  std::stringstream json;
  json << in.rdbuf();
  v1::Model record;
  if (!google::protobuf::util::JsonStringToMessage(json.str(), &record).ok()) {
    return absl::DataLossError(absl::StrCat("model record '", path.string(), "' is corrupt"));
  }
  return record;
}

// Records `tenant` as an owner of the model folder `model_dir`.
absl::Status WriteOwner(const fs::path& model_dir, const std::string& tenant) {
  std::error_code error;
  fs::create_directories(model_dir / kOwnersFolder, error);
  std::ofstream owner(model_dir / kOwnersFolder / tenant, std::ios::trunc);
  if (error || !owner) {
    return absl::InternalError(absl::StrCat("cannot record tenant '", tenant, "' in '", model_dir.string(), "'"));
  }
  return absl::OkStatus();
}

}  // namespace

PendingUpload::PendingUpload(const ModelStore* store, UploadHeader header, std::string tenant, fs::path staging_dir)
    : store_(store), header_(std::move(header)), tenant_(std::move(tenant)), staging_dir_(std::move(staging_dir)) {}

PendingUpload::~PendingUpload() {
  file_.close();
  std::error_code ignored;
  fs::remove_all(staging_dir_, ignored);  // no-op after a successful Publish moved it
}

absl::Status PendingUpload::Append(absl::string_view bytes) {
  const int64_t total = received_bytes_ + static_cast<int64_t>(bytes.size());
  if (total > store_->max_model_bytes()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("upload exceeds the server's limit of ", store_->max_model_bytes(),
                     " bytes (--max-upload-mb)"));
  }
  if (total > header_.size_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("upload carries more bytes than header.size_bytes = ", header_.size_bytes));
  }
  file_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file_) {
    return absl::InternalError(absl::StrCat("cannot write upload to '", staging_dir_.string(),
                                            "': ", std::strerror(errno)));
  }
  hasher_.Update(bytes);
  received_bytes_ = total;
  return absl::OkStatus();
}

absl::StatusOr<v1::Model> PendingUpload::Commit() {
  file_.close();
  if (!file_) {
    return absl::InternalError(absl::StrCat("cannot flush upload in '", staging_dir_.string(), "'"));
  }
  if (received_bytes_ < header_.size_bytes) {
    return absl::DataLossError(absl::StrCat("upload of '", header_.filename, "' ended after ",
                                            received_bytes_, " of ", header_.size_bytes,
                                            " declared bytes"));
  }
  const std::string digest = hasher_.HexDigest();
  if (digest != header_.sha256) {
    return absl::InvalidArgumentError(absl::StrCat("sha256 mismatch for '", header_.filename,
                                                   "': header.sha256 is ", header_.sha256,
                                                   ", the received bytes hash to ", digest));
  }
  if (store_->Get(digest, TenantScope::All()).ok()) return store_->AddOwner(digest, tenant_);
  absl::StatusOr<core::TorchScriptSummary> summary =
      core::InspectTorchScript((staging_dir_ / kModelFileName).string(), header_.filename,
                               static_cast<uint64_t>(store_->max_model_bytes()));
  if (!summary.ok()) return summary.status();

  v1::Model record;
  record.set_model_id(digest);
  record.set_sha256(digest);
  record.set_size_bytes(received_bytes_);
  record.set_filename(header_.filename);
  *record.mutable_uploaded_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  record.set_forward_schema(summary->forward_schema);
  record.set_parameter_count(summary->parameter_count);
  if (absl::Status written = WriteRecord(staging_dir_ / kRecordFileName, record); !written.ok()) {
    return written;
  }
  if (absl::Status owned = WriteOwner(staging_dir_, tenant_); !owned.ok()) return owned;
  return store_->Publish(staging_dir_, record, tenant_);
}

ModelStore::ModelStore(fs::path models_dir, fs::path staging_dir, int64_t max_model_bytes)
    : models_dir_(std::move(models_dir)),
      staging_dir_(std::move(staging_dir)),
      max_model_bytes_(max_model_bytes) {}

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::Create(const fs::path& state_dir,
                                                               int64_t max_model_bytes,
                                                               const std::string& staging_name) {
  if (max_model_bytes <= 0) {
    return absl::InvalidArgumentError("max upload size must be positive");
  }
  const fs::path models_dir = state_dir / "models";
  const fs::path staging_dir = state_dir / "staging" / staging_name;
  std::error_code error;
  fs::remove_all(staging_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot clear '", staging_dir.string(), "': ", error.message()));
  }
  for (const fs::path& dir : {models_dir, staging_dir}) {
    fs::create_directories(dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot create '", dir.string(), "': ", error.message()));
    }
  }
  for (const fs::directory_entry& model_dir : fs::directory_iterator(models_dir, error)) {
    if (!fs::exists(model_dir.path() / kOwnersFolder, error)) {
      if (absl::Status owned = WriteOwner(model_dir.path(), kDefaultTenant); !owned.ok()) return owned;
    }
  }
  return std::unique_ptr<ModelStore>(new ModelStore(models_dir, staging_dir, max_model_bytes));
}

absl::StatusOr<std::unique_ptr<PendingUpload>> ModelStore::BeginUpload(const UploadHeader& header,
                                                                       std::string tenant) const {
  if (header.size_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.size_bytes must be positive, got ", header.size_bytes));
  }
  if (header.size_bytes > max_model_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model is ", header.size_bytes, " bytes, over the server's limit of ",
                     max_model_bytes_, " bytes (--max-upload-mb)"));
  }
  const std::string sha256 = absl::AsciiStrToLower(header.sha256);
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.sha256 must be 64 hex digits, got '", header.sha256, "'"));
  }
  UploadHeader checked = header;
  checked.sha256 = sha256;
  checked.filename = fs::path(header.filename).filename().string().substr(0, kMaxFilenameLength);
  if (checked.filename.empty()) checked.filename = kModelFileName;

  const fs::path staging = staging_dir_ / NewStagingName();
  std::error_code error;
  fs::create_directories(staging, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create '", staging.string(), "': ", error.message()));
  }
  auto upload = std::unique_ptr<PendingUpload>(new PendingUpload(this, std::move(checked), std::move(tenant), staging));
  upload->file_.open(staging / kModelFileName, std::ios::binary | std::ios::trunc);
  if (!upload->file_) {
    return absl::InternalError(absl::StrCat("cannot open a staging file in '", staging.string(),
                                            "': ", std::strerror(errno)));
  }
  return upload;
}

absl::StatusOr<v1::Model> ModelStore::Get(absl::string_view model_id, const TenantScope& scope) const {
  if (!IsSha256Hex(model_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_id must be the model's sha256 (64 lowercase hex digits), got '", model_id, "'"));
  }
  const fs::path record_path = models_dir_ / std::string(model_id) / kRecordFileName;
  std::error_code error;
  const bool seen = scope.all_tenants || fs::exists(record_path.parent_path() / kOwnersFolder / scope.tenant, error);
  if (!seen || !fs::exists(record_path, error)) {
    return absl::NotFoundError(absl::StrCat("no model with id ", model_id));
  }
  return ReadRecord(record_path);
}

fs::path ModelStore::ModelFile(absl::string_view model_id) const {
  return models_dir_ / std::string(model_id) / kModelFileName;
}

std::vector<v1::Model> ModelStore::List(const TenantScope& scope) const {
  std::vector<v1::Model> models;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(models_dir_, error)) {
    const std::string id = entry.path().filename().string();
    if (!IsSha256Hex(id)) continue;
    if (absl::StatusOr<v1::Model> model = Get(id, scope); model.ok()) models.push_back(*std::move(model));
  }
  std::sort(models.begin(), models.end(), [](const v1::Model& a, const v1::Model& b) {
    return google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.uploaded_at()) >
           google::protobuf::util::TimeUtil::TimestampToNanoseconds(b.uploaded_at());
  });
  return models;
}

absl::StatusOr<bool> ModelStore::Delete(absl::string_view model_id, const TenantScope& scope) const {
  const std::lock_guard<std::mutex> lock(owners_mutex_);
  if (absl::StatusOr<v1::Model> model = Get(model_id, scope); !model.ok()) return model.status();
  const fs::path model_dir = models_dir_ / std::string(model_id);
  std::error_code error;
  if (scope.all_tenants) {
    fs::remove_all(model_dir / kOwnersFolder, error);
  } else {
    fs::remove(model_dir / kOwnersFolder / scope.tenant, error);
  }
  if (error) return absl::InternalError(absl::StrCat("cannot remove owners of model ", model_id, ": ", error.message()));
  if (!fs::is_empty(model_dir / kOwnersFolder, error) && !error) return false;
  // Out of the store in one rename, then removed: a crash in between leaves only staging.
  const fs::path doomed = staging_dir_ / absl::StrCat("deleted-", model_id);
  fs::rename(model_dir, doomed, error);
  if (error) return absl::InternalError(absl::StrCat("cannot remove model ", model_id, ": ", error.message()));
  fs::remove_all(doomed, error);
  return true;
}

absl::StatusOr<v1::Model> ModelStore::Publish(const fs::path& staging_dir, const v1::Model& record,
                                              const std::string& tenant) const {
  const fs::path target = models_dir_ / record.model_id();
  std::error_code error;
  {
    const std::lock_guard<std::mutex> lock(owners_mutex_);
    fs::rename(staging_dir, target, error);
  }
  if (!error) return record;
  // rename(2) refuses to replace a non-empty folder: the same bytes were published meanwhile.
  if (Get(record.model_id(), TenantScope::All()).ok()) return AddOwner(record.model_id(), tenant);
  return absl::InternalError(absl::StrCat("cannot move the upload into '", target.string(),
                                          "': ", error.message()));
}

absl::StatusOr<v1::Model> ModelStore::AddOwner(absl::string_view model_id, const std::string& tenant) const {
  const std::lock_guard<std::mutex> lock(owners_mutex_);
  absl::StatusOr<v1::Model> model = Get(model_id, TenantScope::All());
  if (!model.ok()) return model;
  model->set_already_present(Get(model_id, TenantScope::Only(tenant)).ok());
  if (absl::Status owned = WriteOwner(models_dir_ / std::string(model_id), tenant); !owned.ok()) return owned;
  return model;
}

}  // namespace ptq::server
