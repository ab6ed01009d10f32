#include "job_registry.h"

#include <gtest/gtest.h>

#include <vector>

#include "test_env.h"

namespace ptq::server {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

class JobRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open((dir_.path() / "jobs.sqlite").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static v1::Job NewJob(const std::string& id, const std::string& idempotency_key = "") {
    v1::Job job;
    job.set_job_id(id);
    job.set_idempotency_key(idempotency_key);
    job.set_state(v1::JOB_STATE_CALIBRATING);
    return job;
  }

  // The job as the store holds it now.
  v1::Job Stored(const std::string& id) const {
    absl::StatusOr<std::vector<JobStore::Row>> rows = store_->LoadAll();
    EXPECT_TRUE(rows.ok()) << rows.status();
    for (const JobStore::Row& row : *rows) {
      if (row.job.job_id() == id) return row.job;
    }
    ADD_FAILURE() << id << " is not stored";
    return {};
  }

  testing::TempDir dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobRegistryTest, ProgressReachesTheStoreOncePerIntervalAndAtTheLastStepWhileWatchersHearEveryStep) {
  JobRegistry registry(store_.get(), hours(1));
  ASSERT_TRUE(registry.Add(NewJob("job-a")).ok());
  std::vector<int64_t> heard;
  ASSERT_TRUE(registry.Watch("job-a", [&](const v1::Job& job) { heard.push_back(job.progress().done()); }).ok());

  registry.ReportProgress("job-a", 1, 10);
  EXPECT_EQ(Stored("job-a").progress().done(), 1) << "the first step of a run is stored";
  for (int64_t done = 2; done <= 9; ++done) registry.ReportProgress("job-a", done, 10);
  EXPECT_EQ(Stored("job-a").progress().done(), 1) << "steps within the interval stay in memory";
  EXPECT_EQ(registry.Get("job-a")->progress().done(), 9);
  registry.ReportProgress("job-a", 10, 10);
  EXPECT_EQ(Stored("job-a").progress().done(), 10) << "the last step is stored";
  EXPECT_EQ(heard, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST_F(JobRegistryTest, AWatcherHearsOfAStoredChangeOnlyOnceItIsStored) {
  JobRegistry registry(store_.get(), milliseconds(0));
  ASSERT_TRUE(registry.Add(NewJob("job-a")).ok());
  int heard = 0;
  ASSERT_TRUE(registry
                  .Watch("job-a",
                         [&](const v1::Job& job) {
                           const v1::Job stored = Stored("job-a");
                           EXPECT_EQ(stored.state(), job.state());
                           EXPECT_EQ(stored.progress().done(), job.progress().done());
                           ++heard;
                         })
                  .ok());
  registry.ReportProgress("job-a", 1, 3);
  registry.ReportProgress("job-a", 2, 3);
  registry.Change("job-a", [](v1::Job& job) { job.set_state(v1::JOB_STATE_EXPORTING); });
  EXPECT_EQ(heard, 4);
}

TEST_F(JobRegistryTest, ALoadedRegistryListsNewestFirstAndFindsIdempotencyKeys) {
  {
    JobRegistry registry(store_.get(), hours(1));
    ASSERT_TRUE(registry.Add(NewJob("job-1", "key-1")).ok());
    ASSERT_TRUE(registry.Add(NewJob("job-2")).ok());
    ASSERT_TRUE(registry.Add(NewJob("job-3")).ok());
    registry.Change("job-2", [](v1::Job& job) { job.set_state(v1::JOB_STATE_SUCCEEDED); });
  }
  JobRegistry registry(store_.get(), hours(1));
  absl::StatusOr<std::vector<v1::Job>> loaded = registry.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 3u);
  EXPECT_EQ((*loaded)[0].job_id(), "job-1");

  ASSERT_TRUE(registry.FindByIdempotencyKey("key-1").has_value());
  EXPECT_EQ(registry.FindByIdempotencyKey("key-1")->job_id(), "job-1");
  EXPECT_FALSE(registry.FindByIdempotencyKey("key-2").has_value());
  EXPECT_EQ(registry.CountInStates({v1::JOB_STATE_CALIBRATING}), 2);

  v1::ListJobsRequest request;
  request.set_page_size(2);
  absl::StatusOr<v1::ListJobsResponse> page = registry.List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs_size(), 2);
  EXPECT_EQ(page->jobs(0).job_id(), "job-3");
  EXPECT_EQ(page->jobs(1).job_id(), "job-2");
  EXPECT_EQ(page->jobs(1).state(), v1::JOB_STATE_SUCCEEDED);
  request.set_page_token(page->next_page_token());
  page = registry.List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(page->jobs(0).job_id(), "job-1");
  EXPECT_TRUE(page->next_page_token().empty());

  EXPECT_TRUE(absl::IsNotFound(registry.Get("job-9").status()));
  EXPECT_TRUE(absl::IsNotFound(registry.Watch("job-9", [](const v1::Job&) {}).status()));
}

}  // namespace
}  // namespace ptq::server
