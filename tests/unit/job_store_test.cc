// Both job stores pass the same tests: SQLite on a temporary file, PostgreSQL on a server of
// the test's own (TestPostgres).
#include "job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <pqxx/pqxx>

#include "test_env.h"
#include "test_postgres.h"

namespace ptq::server {
namespace {

enum class Backend { kSqlite, kPostgres };

v1::Job JobNamed(const std::string& id, v1::JobState state) {
  v1::Job job;
  job.set_job_id(id);
  job.set_state(state);
  return job;
}

class JobStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      spec_ = "sqlite:" + (dir_.path() / "jobs.sqlite").string();
      return;
    }
    postgres_ = std::make_unique<testing::TestPostgres>();
    ASSERT_TRUE(postgres_->running());
    spec_ = postgres_->NewDatabase();
  }

  absl::StatusOr<std::unique_ptr<JobStore>> Open() const { return OpenJobStore(spec_); }

  // Runs `sql` on the store's database behind the store's back.
  void Execute(const std::string& sql) const {
    if (GetParam() == Backend::kSqlite) {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(spec_.substr(7).c_str(), &db), SQLITE_OK);
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
      sqlite3_close(db);
      return;
    }
    pqxx::connection connection(spec_);
    pqxx::work work(connection);
    work.exec0(sql);
    work.commit();
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TestPostgres> postgres_;
  std::string spec_;
};

TEST_P(JobStoreTest, KeepsJobsInSubmissionOrderAcrossReopening) {
  {
    absl::StatusOr<std::unique_ptr<JobStore>> store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<int64_t> first = (*store)->Insert(JobNamed("job-b", v1::JOB_STATE_QUEUED));
    absl::StatusOr<int64_t> second = (*store)->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED));
    ASSERT_TRUE(first.ok() && second.ok()) << first.status() << second.status();
    EXPECT_LT(*first, *second);
    v1::Job done = JobNamed("job-b", v1::JOB_STATE_SUCCEEDED);
    done.mutable_progress()->set_done(7);
    ASSERT_TRUE((*store)->Update(done).ok());
    EXPECT_TRUE(absl::IsNotFound((*store)->Update(JobNamed("job-z", v1::JOB_STATE_FAILED))));
    EXPECT_FALSE((*store)->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED)).ok()) << "ids are unique";
    EXPECT_TRUE((*store)->Insert(JobNamed("job-c", v1::JOB_STATE_QUEUED)).ok()) << "and the store still works";
    ASSERT_TRUE((*store)->Insert(JobNamed("job-deleted", v1::JOB_STATE_FAILED)).ok());
    EXPECT_TRUE((*store)->Delete("job-deleted").ok());
    EXPECT_TRUE(absl::IsNotFound((*store)->Delete("job-deleted")));
  }
  absl::StatusOr<std::unique_ptr<JobStore>> reopened = Open();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<std::vector<JobStore::Row>> rows = (*reopened)->LoadAll();
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].job.job_id(), "job-b");
  EXPECT_EQ((*rows)[0].job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ((*rows)[0].job.progress().done(), 7);
  EXPECT_EQ((*rows)[1].job.job_id(), "job-a");
  EXPECT_EQ((*rows)[2].job.job_id(), "job-c");
}

// Regression: one row that did not parse stopped the whole service at start.
TEST_P(JobStoreTest, RowsThatDoNotParseAreQuarantinedAndTheRestLoad) {
  absl::StatusOr<std::unique_ptr<JobStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Insert(JobNamed("job-a", v1::JOB_STATE_SUCCEEDED)).ok());
  absl::StatusOr<int64_t> broken = (*store)->Insert(JobNamed("job-b", v1::JOB_STATE_QUEUED));
  ASSERT_TRUE((*store)->Insert(JobNamed("job-c", v1::JOB_STATE_FAILED)).ok());
  ASSERT_TRUE(broken.ok());
  store->reset();
  // Field 1 as a length-delimited string claiming 100 bytes, with 1 present: not a v1::Job.
  Execute(GetParam() == Backend::kSqlite ? "UPDATE jobs SET job = x'0a64ff' WHERE job_id = 'job-b'"
                                         : "UPDATE jobs SET job = '\\x0a64ff'::bytea WHERE job_id = 'job-b'");

  store = Open();
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

TEST_P(JobStoreTest, ASchemaFromANewerServerIsRefusedAndAnOlderOneUpgraded) {
  ASSERT_TRUE(Open().ok());
  Execute(GetParam() == Backend::kSqlite ? "PRAGMA user_version = 0" : "UPDATE ptq_schema SET version = 0");
  ASSERT_TRUE(Open().ok()) << "the first layout, which stored no version, upgrades";
  Execute(GetParam() == Backend::kSqlite ? "PRAGMA user_version = 99" : "UPDATE ptq_schema SET version = 99");
  const absl::Status newer = Open().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(newer)) << newer;
  EXPECT_NE(newer.message().find("schema version 99, newer than this ptq-server's 1"), absl::string_view::npos)
      << newer;
}

INSTANTIATE_TEST_SUITE_P(Backends, JobStoreTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

TEST(PostgresJobStoreTest, OneServerPerStore) {
  testing::TestPostgres postgres;
  ASSERT_TRUE(postgres.running());
  const std::string url = postgres.NewDatabase();
  absl::StatusOr<std::unique_ptr<JobStore>> first = OpenJobStore(url);
  ASSERT_TRUE(first.ok()) << first.status();
  const absl::Status second = OpenJobStore(url).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
  EXPECT_NE(second.message().find("another ptq-server uses this PostgreSQL job store"), absl::string_view::npos);
  first->reset();
  EXPECT_TRUE(OpenJobStore(url).ok()) << "the store is free once its server is gone";
}

TEST(OpenJobStoreTest, SaysWhyItCannotOpenWithoutRepeatingAPassword) {
  testing::TempDir dir;
  const absl::Status sqlite = OpenJobStore("sqlite:" + (dir.path() / "missing" / "jobs.sqlite").string()).status();
  EXPECT_NE(sqlite.message().find("jobs.sqlite"), absl::string_view::npos) << sqlite;

  const absl::Status unreachable =
      OpenJobStore("postgresql://ptq:s3cret-pass@/jobs?host=" + (dir.path() / "nothing").string() + "&port=5432")
          .status();
  EXPECT_TRUE(absl::IsUnavailable(unreachable)) << unreachable;
  EXPECT_NE(unreachable.message().find("the database cannot be reached"), absl::string_view::npos) << unreachable;
  EXPECT_EQ(unreachable.message().find("s3cret-pass"), absl::string_view::npos) << unreachable;

  const absl::Status unknown = OpenJobStore("mysql://root:pw@db/jobs").status();
  EXPECT_TRUE(absl::IsInvalidArgument(unknown)) << unknown;
  EXPECT_EQ(unknown.message().find("pw@"), absl::string_view::npos) << unknown;
}

}  // namespace
}  // namespace ptq::server
