#include "job_registry.h"

#include <gtest/gtest.h>

#include <vector>

#include "absl/strings/str_replace.h"
#include "test_env.h"

namespace ptq::server {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

class JobRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<JobStore>> store = OpenJobStore("sqlite:" + (dir_.path() / "jobs.sqlite").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static v1::Job NewJob(const std::string& id, const std::string& idempotency_key = "",
                        const std::string& tenant = "") {
    v1::Job job;
    job.set_job_id(id);
    job.set_tenant(tenant);
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

// Another api server's deletions: one it made first (the store has no record left to delete)
// and one it reports through the change feed are both forgotten, key and all; Forget leaves
// the store alone.
TEST_F(JobRegistryTest, JobsAnotherServerDeletedAreForgotten) {
  JobRegistry registry(store_.get(), hours(1));
  ASSERT_TRUE(registry.Add(NewJob("job-a", "key-a", "team")).ok());
  ASSERT_TRUE(registry.Add(NewJob("job-b", "key-b", "team")).ok());
  ASSERT_TRUE(store_->Delete("job-a").ok());  // as another server would
  const absl::Status removed = registry.Remove("job-a");
  EXPECT_TRUE(absl::IsNotFound(removed)) << removed;
  EXPECT_TRUE(absl::IsNotFound(registry.Get("job-a").status()));
  EXPECT_FALSE(registry.FindByIdempotencyKey("team", "key-a").has_value());

  registry.Forget("job-b");
  registry.Forget("job-z");
  EXPECT_TRUE(absl::IsNotFound(registry.Get("job-b").status()));
  EXPECT_FALSE(registry.FindByIdempotencyKey("team", "key-b").has_value());
  EXPECT_EQ(Stored("job-b").job_id(), "job-b");
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

  // Stored without a tenant: the default tenant's.
  EXPECT_EQ((*loaded)[0].tenant(), kDefaultTenant);
  ASSERT_TRUE(registry.FindByIdempotencyKey(kDefaultTenant, "key-1").has_value());
  EXPECT_EQ(registry.FindByIdempotencyKey(kDefaultTenant, "key-1")->job_id(), "job-1");
  EXPECT_FALSE(registry.FindByIdempotencyKey(kDefaultTenant, "key-2").has_value());
  EXPECT_EQ(registry.CountInStates({v1::JOB_STATE_CALIBRATING}), 2);

  v1::ListJobsRequest request;
  request.set_page_size(2);
  absl::StatusOr<v1::ListJobsResponse> page = registry.List(request, TenantScope::All());
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs_size(), 2);
  EXPECT_EQ(page->jobs(0).job_id(), "job-3");
  EXPECT_EQ(page->jobs(1).job_id(), "job-2");
  EXPECT_EQ(page->jobs(1).state(), v1::JOB_STATE_SUCCEEDED);
  request.set_page_token(page->next_page_token());
  page = registry.List(request, TenantScope::All());
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->jobs_size(), 1);
  EXPECT_EQ(page->jobs(0).job_id(), "job-1");
  EXPECT_TRUE(page->next_page_token().empty());

  EXPECT_TRUE(absl::IsNotFound(registry.Get("job-9").status()));
  EXPECT_TRUE(absl::IsNotFound(registry.Watch("job-9", [](const v1::Job&) {}).status()));
}

TEST_F(JobRegistryTest, ATenantSeesOnlyItsJobsAndItsIdempotencyKeys) {
  JobRegistry registry(store_.get(), hours(1));
  ASSERT_TRUE(registry.Add(NewJob("job-a1", "deploy-42", "team-a")).ok());
  ASSERT_TRUE(registry.Add(NewJob("job-b1", "deploy-42", "team-b")).ok());
  ASSERT_TRUE(registry.Add(NewJob("job-a2", "", "team-a")).ok());

  EXPECT_EQ(registry.FindByIdempotencyKey("team-a", "deploy-42")->job_id(), "job-a1");
  EXPECT_EQ(registry.FindByIdempotencyKey("team-b", "deploy-42")->job_id(), "job-b1");
  EXPECT_FALSE(registry.FindByIdempotencyKey("team-c", "deploy-42").has_value());

  const TenantScope team_a = TenantScope::Only("team-a");
  EXPECT_TRUE(registry.GetVisible("job-a1", team_a).ok());
  const absl::Status hidden = registry.GetVisible("job-b1", team_a).status();
  EXPECT_TRUE(absl::IsNotFound(hidden)) << hidden;
  // The same words as for a job that does not exist: no existence oracle.
  EXPECT_EQ(hidden.message(), absl::StrReplaceAll(registry.GetVisible("job-zz", team_a).status().message(),
                                                  {{"job-zz", "job-b1"}}));
  EXPECT_TRUE(registry.GetVisible("job-b1", TenantScope{"team-a", true}).ok());

  v1::ListJobsRequest request;
  request.set_page_size(1);
  std::vector<std::string> listed;
  do {
    absl::StatusOr<v1::ListJobsResponse> page = registry.List(request, team_a);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::Job& job : page->jobs()) listed.push_back(job.job_id());
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  EXPECT_EQ(listed, (std::vector<std::string>{"job-a2", "job-a1"}));
  EXPECT_EQ(registry.List(v1::ListJobsRequest(), TenantScope::All())->jobs_size(), 3);
}

}  // namespace
}  // namespace ptq::server
