#include "model_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "ptq/common/sha256.h"
#include "test_env.h"

namespace ptq::server {
namespace {

namespace fs = std::filesystem;
using ptq::testing::ListFiles;
using ptq::testing::TempDir;


class ModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tiny_bytes_ = ptq::testing::ReadFileBytes(ptq::testing::TestModelsDir() / "tiny.pt");
    ASSERT_FALSE(tiny_bytes_.empty());
    tiny_sha_ = Sha256Hex(tiny_bytes_);
    absl::StatusOr<std::unique_ptr<ModelStore>> store = ModelStore::Create(state_.path(), 1 << 20);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Streams `bytes` in small chunks, as UploadModelReactor does, and commits.
  absl::StatusOr<v1::Model> Upload(const std::string& bytes, const UploadHeader& header,
                                   const std::string& tenant = "team-a") {
    absl::StatusOr<std::unique_ptr<PendingUpload>> upload = store_->BeginUpload(header, tenant);
    if (!upload.ok()) return upload.status();
    for (size_t offset = 0; offset < bytes.size(); offset += 4096) {
      absl::Status appended = (*upload)->Append(absl::string_view(bytes).substr(offset, 4096));
      if (!appended.ok()) return appended;
    }
    return (*upload)->Commit();
  }

  UploadHeader TinyHeader() const {
    return UploadHeader{"tiny.pt", static_cast<int64_t>(tiny_bytes_.size()), tiny_sha_};
  }
  std::vector<std::string> StagingFiles() const {
    return ListFiles(state_.path() / "staging");
  }

  TempDir state_;
  std::unique_ptr<ModelStore> store_;
  std::string tiny_bytes_;
  std::string tiny_sha_;
};

TEST_F(ModelStoreTest, HeaderNeedsAPositiveSize) {
  UploadHeader header = TinyHeader();
  header.size_bytes = 0;
  absl::Status status = store_->BeginUpload(header, "team-a").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("header.size_bytes"), absl::string_view::npos) << status;
}

TEST_F(ModelStoreTest, DeclaredSizeOverTheLimitIsResourceExhausted) {
  UploadHeader header = TinyHeader();
  header.size_bytes = (1 << 20) + 1;
  absl::Status status = store_->BeginUpload(header, "team-a").status();
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_TRUE(StagingFiles().empty());
}

TEST_F(ModelStoreTest, HeaderNeedsAHexSha256) {
  UploadHeader header = TinyHeader();
  header.sha256 = "not-a-digest";
  absl::Status status = store_->BeginUpload(header, "team-a").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("header.sha256"), absl::string_view::npos) << status;
}

TEST_F(ModelStoreTest, StoresAModelUnderItsSha256) {
  absl::StatusOr<v1::Model> model = Upload(tiny_bytes_, TinyHeader());
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->model_id(), tiny_sha_);
  EXPECT_EQ(model->size_bytes(), static_cast<int64_t>(tiny_bytes_.size()));
  EXPECT_EQ(model->parameter_count(), 322);
  EXPECT_FALSE(model->already_present());
  EXPECT_EQ(ptq::testing::ReadFileBytes(store_->ModelFile(tiny_sha_)), tiny_bytes_);
  EXPECT_TRUE(StagingFiles().empty());

  absl::StatusOr<v1::Model> fetched = store_->Get(tiny_sha_, TenantScope::Only("team-a"));
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->filename(), "tiny.pt");
  EXPECT_EQ(fetched->forward_schema(), model->forward_schema());
}

TEST_F(ModelStoreTest, UppercaseDigestAndPathInFilenameAreNormalised) {
  UploadHeader header = TinyHeader();
  for (char& c : header.sha256) c = static_cast<char>(std::toupper(c));
  header.filename = "../../etc/evil.pt";
  absl::StatusOr<v1::Model> model = Upload(tiny_bytes_, header);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->model_id(), tiny_sha_);
  EXPECT_EQ(model->filename(), "evil.pt");
}

TEST_F(ModelStoreTest, SameBytesTwiceGiveTheSameId) {
  absl::StatusOr<v1::Model> first = Upload(tiny_bytes_, TinyHeader());
  absl::StatusOr<v1::Model> second = Upload(tiny_bytes_, TinyHeader());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->model_id(), second->model_id());
  EXPECT_TRUE(second->already_present());
  EXPECT_EQ(ListFiles(state_.path() / "models").size(), 3u);  // model.pt, model.json, owners/team-a
  EXPECT_TRUE(StagingFiles().empty());
}

TEST_F(ModelStoreTest, TruncatedUploadIsDataLossAndLeavesNothing) {
  absl::StatusOr<v1::Model> model =
      Upload(tiny_bytes_.substr(0, tiny_bytes_.size() / 2), TinyHeader());
  EXPECT_TRUE(absl::IsDataLoss(model.status())) << model.status();
  EXPECT_TRUE(StagingFiles().empty());
  EXPECT_TRUE(ListFiles(state_.path() / "models").empty());
}

TEST_F(ModelStoreTest, MoreBytesThanDeclaredIsInvalidArgument) {
  UploadHeader header = TinyHeader();
  header.size_bytes -= 1;
  absl::StatusOr<v1::Model> model = Upload(tiny_bytes_, header);
  EXPECT_TRUE(absl::IsInvalidArgument(model.status())) << model.status();
  EXPECT_TRUE(StagingFiles().empty());
}

TEST_F(ModelStoreTest, BytesPastTheLimitAreResourceExhausted) {
  absl::StatusOr<std::unique_ptr<ModelStore>> small = ModelStore::Create(state_.path(), 1000);
  ASSERT_TRUE(small.ok());
  absl::StatusOr<std::unique_ptr<PendingUpload>> upload =
      (*small)->BeginUpload(UploadHeader{"m.pt", 1000, tiny_sha_}, "team-a");
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_TRUE((*upload)->Append(std::string(600, 'a')).ok());
  EXPECT_TRUE(absl::IsResourceExhausted((*upload)->Append(std::string(600, 'a'))));
}

TEST_F(ModelStoreTest, ShaMismatchIsRejected) {
  UploadHeader header = TinyHeader();
  header.sha256 = Sha256Hex("something else");
  absl::StatusOr<v1::Model> model = Upload(tiny_bytes_, header);
  ASSERT_TRUE(absl::IsInvalidArgument(model.status())) << model.status();
  EXPECT_NE(model.status().message().find("sha256 mismatch"), absl::string_view::npos);
  EXPECT_TRUE(StagingFiles().empty());
  EXPECT_TRUE(ListFiles(state_.path() / "models").empty());
}

TEST_F(ModelStoreTest, BytesThatAreNotTorchScriptAreRejected) {
  const std::string junk(5000, '\x7f');
  absl::StatusOr<v1::Model> model =
      Upload(junk, UploadHeader{"junk.pt", static_cast<int64_t>(junk.size()), Sha256Hex(junk)});
  ASSERT_TRUE(absl::IsInvalidArgument(model.status())) << model.status();
  EXPECT_NE(model.status().message().find("'junk.pt' is not a TorchScript file"),
            absl::string_view::npos)
      << model.status();
  EXPECT_TRUE(StagingFiles().empty());
  EXPECT_TRUE(ListFiles(state_.path() / "models").empty());
}

TEST_F(ModelStoreTest, AbandonedUploadLeavesNothing) {
  {
    absl::StatusOr<std::unique_ptr<PendingUpload>> upload = store_->BeginUpload(TinyHeader(), "team-a");
    ASSERT_TRUE(upload.ok());
    ASSERT_TRUE((*upload)->Append(tiny_bytes_.substr(0, 100)).ok());
    EXPECT_FALSE(StagingFiles().empty());
  }
  EXPECT_TRUE(StagingFiles().empty());
}

TEST_F(ModelStoreTest, CreateRemovesStagingLeftoversOfACrash) {
  const fs::path leftover = state_.path() / "staging" / "models" / "upload-crashed" / "model.pt";
  fs::create_directories(leftover.parent_path());
  std::ofstream(leftover) << "partial";
  ASSERT_TRUE(ModelStore::Create(state_.path(), 1 << 20).ok());
  EXPECT_TRUE(StagingFiles().empty());
}

TEST_F(ModelStoreTest, GetChecksTheIdFormatThenExistence) {
  EXPECT_TRUE(absl::IsInvalidArgument(store_->Get("../../etc/passwd", TenantScope::All()).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Get(Sha256Hex("absent"), TenantScope::All()).status()));
}

TEST_F(ModelStoreTest, ATenantSeesOnlyTheModelsItUploaded) {
  ASSERT_TRUE(Upload(tiny_bytes_, TinyHeader(), "team-a").ok());
  const absl::Status hidden = store_->Get(tiny_sha_, TenantScope::Only("team-b")).status();
  EXPECT_TRUE(absl::IsNotFound(hidden)) << hidden;
  // Worded as for bytes nobody uploaded: no tenant learns what another one holds.
  const std::string absent = Sha256Hex("absent");
  EXPECT_EQ(store_->Get(absent, TenantScope::All()).status().message(),
            absl::StrReplaceAll(hidden.message(), {{tiny_sha_, absent}}));
  EXPECT_TRUE(store_->Get(tiny_sha_, TenantScope{"team-b", true}).ok());  // an admin of team-b

  absl::StatusOr<v1::Model> for_b = Upload(tiny_bytes_, TinyHeader(), "team-b");
  ASSERT_TRUE(for_b.ok()) << for_b.status();
  EXPECT_FALSE(for_b->already_present());  // new to team-b, whoever else had it
  EXPECT_TRUE(store_->Get(tiny_sha_, TenantScope::Only("team-b")).ok());
  EXPECT_TRUE(store_->Get(tiny_sha_, TenantScope::Only("team-a")).ok());
  absl::StatusOr<v1::Model> again = Upload(tiny_bytes_, TinyHeader(), "team-b");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_present());
}

TEST_F(ModelStoreTest, ModelsStoredBeforeTenantsBecomeTheDefaultTenants) {
  ASSERT_TRUE(Upload(tiny_bytes_, TinyHeader(), "team-a").ok());
  fs::remove_all(state_.path() / "models" / tiny_sha_ / "owners");
  ASSERT_FALSE(store_->Get(tiny_sha_, TenantScope::Only("team-a")).ok());
  absl::StatusOr<std::unique_ptr<ModelStore>> reopened = ModelStore::Create(state_.path(), 1 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->Get(tiny_sha_, TenantScope::Only(kDefaultTenant)).ok());
  EXPECT_FALSE((*reopened)->Get(tiny_sha_, TenantScope::Only("team-a")).ok());
}

}  // namespace
}  // namespace ptq::server
