#include "job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "test_env.h"

namespace ptq::server {
namespace {

v1::Job JobNamed(const std::string& id, v1::JobState state) {
  v1::Job job;
  job.set_job_id(id);
  job.set_state(state);
  return job;
}

TEST(JobStoreTest, KeepsJobsInSubmissionOrderAcrossReopening) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "jobs.sqlite").string();
  {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<int64_t> first = (*store)->Insert(JobNamed("job-b", v1::JOB_STATE_QUEUED));
    absl::StatusOr<int64_t> second = (*store)->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED));
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_LT(*first, *second);
    v1::Job done = JobNamed("job-b", v1::JOB_STATE_SUCCEEDED);
    done.set_error("");
    done.mutable_progress()->set_done(7);
    ASSERT_TRUE((*store)->Update(done).ok());
    EXPECT_TRUE(absl::IsNotFound((*store)->Update(JobNamed("job-z", v1::JOB_STATE_FAILED))));
    EXPECT_FALSE((*store)->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED)).ok()) << "ids are unique";
  }
  absl::StatusOr<std::unique_ptr<JobStore>> reopened = JobStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<std::vector<JobStore::Row>> rows = (*reopened)->LoadAll();
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].job.job_id(), "job-b");
  EXPECT_EQ((*rows)[0].job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ((*rows)[0].job.progress().done(), 7);
  EXPECT_EQ((*rows)[1].job.job_id(), "job-a");
}

// Regression: one row that did not parse stopped the whole service at start.
TEST(JobStoreTest, RowsThatDoNotParseAreQuarantinedAndTheRestLoad) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "jobs.sqlite").string();
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Insert(JobNamed("job-a", v1::JOB_STATE_SUCCEEDED)).ok());
  absl::StatusOr<int64_t> broken = (*store)->Insert(JobNamed("job-b", v1::JOB_STATE_QUEUED));
  ASSERT_TRUE((*store)->Insert(JobNamed("job-c", v1::JOB_STATE_FAILED)).ok());
  ASSERT_TRUE(broken.ok());
  store->reset();
  {
    // Field 1 as a length-delimited string claiming 100 bytes, with 1 present: not a v1::Job.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "UPDATE jobs SET job = x'0a64ff' WHERE job_id = 'job-b'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  store = JobStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsDataLoss((*store)->LoadAll().status()));
  absl::StatusOr<std::vector<int64_t>> quarantined = (*store)->QuarantineUnreadableRows();
  ASSERT_TRUE(quarantined.ok()) << quarantined.status();
  EXPECT_EQ(*quarantined, std::vector<int64_t>{*broken});
  absl::StatusOr<std::vector<JobStore::Row>> rows = (*store)->LoadAll();
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].job.job_id(), "job-a");
  EXPECT_EQ((*rows)[1].job.job_id(), "job-c");
  EXPECT_TRUE((*store)->QuarantineUnreadableRows()->empty());
}

TEST(JobStoreTest, SaysWhyItCannotOpen) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open((dir.path() / "missing" / "jobs.sqlite").string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("jobs.sqlite"), absl::string_view::npos) << store.status();
}

}  // namespace
}  // namespace ptq::server
