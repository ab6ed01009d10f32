#ifndef PTQ_SERVER_MODEL_STORE_H_
#define PTQ_SERVER_MODEL_STORE_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ptq/common/sha256.h"
#include "ptq/v1/service.pb.h"
#include "tenant_scope.h"

namespace ptq::server {

// What a client declares before sending a model's bytes.
struct UploadHeader {
  std::string filename;
  int64_t size_bytes = 0;
  std::string sha256;
};

class ModelStore;

// One model being received. Its bytes go to a private staging folder that is removed unless
// Commit() moves it into the store, so a failed or abandoned upload leaves nothing behind.
class PendingUpload {
 public:
  ~PendingUpload();
  PendingUpload(const PendingUpload&) = delete;
  PendingUpload& operator=(const PendingUpload&) = delete;

  // RESOURCE_EXHAUSTED beyond the store's size limit; INVALID_ARGUMENT beyond the declared size.
  absl::Status Append(absl::string_view bytes);
  int64_t received_bytes() const { return received_bytes_; }

  // Checks the size (DATA_LOSS when short) and sha256 (INVALID_ARGUMENT), loads the file with
  // LibTorch (INVALID_ARGUMENT when it is not TorchScript), then publishes it atomically as
  // the uploading tenant's. Bytes the store already holds are not checked again: the tenant
  // is added to their owners. `already_present` says whether this tenant had them before.
  // Blocking: seconds for a large model. Call at most once.
  absl::StatusOr<v1::Model> Commit();

 private:
  friend class ModelStore;
  PendingUpload(const ModelStore* store, UploadHeader header, std::string tenant, std::filesystem::path staging_dir);

  const ModelStore* store_;
  UploadHeader header_;
  std::string tenant_;
  std::filesystem::path staging_dir_;
  std::ofstream file_;
  Sha256 hasher_;
  int64_t received_bytes_ = 0;
};

// Content-addressed store of uploaded TorchScript models under <state-dir>/models/<sha256>/:
// model.pt, model.json (the v1::Model record) and owners/, one empty file per tenant that
// uploaded these bytes. The model id is the file's sha256; a tenant sees only the models it
// uploaded.
class ModelStore {
 public:
  // Creates the folders, removes staging leftovers of uploads a crash interrupted, and gives
  // models stored before tenants existed to the default tenant. Uploads are staged in
  // staging/<staging_name>, which this store alone uses: servers that share the state
  // directory each need their own.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Create(const std::filesystem::path& state_dir,
                                                            int64_t max_model_bytes,
                                                            const std::string& staging_name = "models");

  // Validates the header (INVALID_ARGUMENT naming the field; RESOURCE_EXHAUSTED when the
  // declared size is over the limit) and opens a staging file.
  absl::StatusOr<std::unique_ptr<PendingUpload>> BeginUpload(const UploadHeader& header, std::string tenant) const;

  // INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one or one `scope` does not
  // see (the same message).
  absl::StatusOr<v1::Model> Get(absl::string_view model_id, const TenantScope& scope) const;

  // The models `scope` sees, newest upload first.
  std::vector<v1::Model> List(const TenantScope& scope) const;
  // Takes the model away from `scope`'s tenant (every owner for an all-tenants scope); once no
  // tenant owns it its folder is removed, and the result says so (true). Get's statuses for an
  // id `scope` does not see. The caller makes sure no job still needs the file.
  absl::StatusOr<bool> Delete(absl::string_view model_id, const TenantScope& scope) const;
  // Where a stored model's TorchScript file lives (whether or not it exists).
  std::filesystem::path ModelFile(absl::string_view model_id) const;

  int64_t max_model_bytes() const { return max_model_bytes_; }

 private:
  friend class PendingUpload;
  ModelStore(std::filesystem::path models_dir, std::filesystem::path staging_dir,
             int64_t max_model_bytes);

  // Moves a verified staging folder to models/<sha256>; a concurrent or earlier upload of the
  // same bytes wins and this one is discarded (AddOwner records the tenant there).
  absl::StatusOr<v1::Model> Publish(const std::filesystem::path& staging_dir, const v1::Model& record,
                                    const std::string& tenant) const;
  // Makes `tenant` an owner of the stored model; already_present tells whether it was one.
  absl::StatusOr<v1::Model> AddOwner(absl::string_view model_id, const std::string& tenant) const;

  std::filesystem::path models_dir_;
  std::filesystem::path staging_dir_;
  int64_t max_model_bytes_;
  // Owners change (an upload of stored bytes, a delete) one at a time, so a model is never
  // removed while an upload of the same bytes is adding its tenant.
  mutable std::mutex owners_mutex_;
};

}  // namespace ptq::server

#endif  // PTQ_SERVER_MODEL_STORE_H_
