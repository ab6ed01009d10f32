// Both job stores pass the same tests: SQLite on a temporary file, PostgreSQL on a server of
// the test's own (TestPostgres).
#include "job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <thread>

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
  EXPECT_NE(newer.message().find("schema version 99, newer than this ptq-server's "), absl::string_view::npos)
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

// The api and worker roles: leases on a shared PostgreSQL store.
class SharedJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(postgres_.running());
    url_ = postgres_.NewDatabase();
  }
  std::unique_ptr<JobStore> OpenShared() const {
    absl::StatusOr<std::unique_ptr<JobStore>> store = OpenJobStore(url_, StoreAccess::kShared);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  testing::TestPostgres postgres_;
  std::string url_;
};

TEST_F(SharedJobStoreTest, ConcurrentClaimersTakeEachQueuedJobOnceAndNothingElse) {
  std::unique_ptr<JobStore> api = OpenShared();
  ASSERT_NE(api, nullptr);
  std::set<std::string> queued;
  for (int i = 0; i < 12; ++i) {
    const std::string id = "job-" + std::to_string(i);
    const v1::JobState state = i % 4 == 3 ? v1::JOB_STATE_AWAITING_DATA : v1::JOB_STATE_QUEUED;
    ASSERT_TRUE(api->Insert(JobNamed(id, state)).ok());
    if (state == v1::JOB_STATE_QUEUED) queued.insert(id);
  }
  std::mutex mutex;
  std::multiset<std::string> claimed;
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      std::unique_ptr<JobStore> store = OpenShared();
      if (store == nullptr) return;
      for (;;) {
        absl::StatusOr<std::optional<JobStore::Claim>> claim =
            store->ClaimNext("worker-" + std::to_string(w), std::chrono::minutes(1));
        ASSERT_TRUE(claim.ok()) << claim.status();
        if (!claim->has_value()) return;
        EXPECT_EQ((*claim)->lease.attempt, 1);
        EXPECT_EQ((*claim)->lease.job_id, (*claim)->job.job_id());
        std::lock_guard<std::mutex> lock(mutex);
        claimed.insert((*claim)->lease.job_id);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()), queued);
  EXPECT_EQ(claimed.size(), queued.size()) << "no job was claimed twice";
}

TEST_F(SharedJobStoreTest, AnExpiredLeaseIsTakenOverAndItsFormerHolderCanNoLongerWrite) {
  std::unique_ptr<JobStore> first = OpenShared();
  std::unique_ptr<JobStore> second = OpenShared();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(first->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED)).ok());
  const std::chrono::milliseconds ttl(300);
  absl::StatusOr<std::optional<JobStore::Claim>> taken = first->ClaimNext("first", ttl);
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  const JobStore::Lease stale = (*taken)->lease;
  EXPECT_TRUE(first->RenewLease(stale, ttl).ok());
  v1::Job calibrating = JobNamed("job-a", v1::JOB_STATE_CALIBRATING);
  EXPECT_TRUE(first->UpdateLeased(stale, calibrating).ok());
  EXPECT_FALSE(second->ClaimNext("second", ttl)->has_value()) << "held";
  const absl::Status api_write = second->Update(JobNamed("job-a", v1::JOB_STATE_CANCELLED));
  EXPECT_TRUE(absl::IsAborted(api_write)) << api_write;
  EXPECT_NE(api_write.message().find("held by worker first"), absl::string_view::npos) << api_write;

  std::this_thread::sleep_for(ttl + std::chrono::milliseconds(200));
  absl::StatusOr<std::optional<JobStore::Claim>> takeover = second->ClaimNext("second", ttl * 10);
  ASSERT_TRUE(takeover.ok() && takeover->has_value()) << takeover.status();
  EXPECT_EQ((*takeover)->lease.attempt, 2);
  EXPECT_EQ((*takeover)->job.state(), v1::JOB_STATE_CALIBRATING) << "as its last holder left it";

  bool published = false;
  auto publish = [&published] {
    published = true;
    return absl::OkStatus();
  };
  EXPECT_TRUE(absl::IsAborted(first->RenewLease(stale, ttl).status()));
  EXPECT_TRUE(absl::IsAborted(first->UpdateLeased(stale, JobNamed("job-a", v1::JOB_STATE_EXPORTING))));
  EXPECT_TRUE(absl::IsAborted(first->Finish(stale, JobNamed("job-a", v1::JOB_STATE_SUCCEEDED), publish)));
  EXPECT_FALSE(published) << "a lost lease publishes nothing";

  ASSERT_TRUE(first->RequestCancel("job-a").ok());
  absl::StatusOr<bool> cancel_requested = second->RenewLease((*takeover)->lease, ttl * 10);
  ASSERT_TRUE(cancel_requested.ok()) << cancel_requested.status();
  EXPECT_TRUE(*cancel_requested);
  EXPECT_TRUE(absl::IsNotFound(first->RequestCancel("job-z")));
  ASSERT_TRUE(second->Finish((*takeover)->lease, JobNamed("job-a", v1::JOB_STATE_CANCELLED), publish).ok());
  EXPECT_TRUE(published);
  EXPECT_FALSE(first->ClaimNext("first", ttl)->has_value()) << "an ended job is never claimed again";
  absl::StatusOr<std::vector<JobStore::Row>> rows = first->LoadAll();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(first->Update(JobNamed("job-a", v1::JOB_STATE_CANCELLED)).ok()) << "released: the api may write it";
}

TEST_F(SharedJobStoreTest, AFailedPublicationStoresNothingAndKeepsTheLease) {
  std::unique_ptr<JobStore> store = OpenShared();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED)).ok());
  absl::StatusOr<std::optional<JobStore::Claim>> taken = store->ClaimNext("w", std::chrono::minutes(1));
  ASSERT_TRUE(taken.ok() && taken->has_value());
  const absl::Status failed = store->Finish((*taken)->lease, JobNamed("job-a", v1::JOB_STATE_SUCCEEDED),
                                            [] { return absl::ResourceExhaustedError("disk full"); });
  EXPECT_TRUE(absl::IsResourceExhausted(failed)) << failed;
  EXPECT_EQ((*store->LoadAll())[0].job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_TRUE(store->RenewLease((*taken)->lease, std::chrono::minutes(1)).ok());
}

TEST_F(SharedJobStoreTest, ChangesComeInOrderAndTheApiWritesOnlyJobsThatWait) {
  std::unique_ptr<JobStore> store = OpenShared();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(JobNamed("job-a", v1::JOB_STATE_QUEUED)).ok());
  ASSERT_TRUE(store->Insert(JobNamed("job-b", v1::JOB_STATE_QUEUED)).ok());
  absl::StatusOr<JobStore::Changes> all = store->ChangesSince(0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->rows.size(), 2u);
  EXPECT_EQ(all->rows[0].job.job_id(), "job-a");
  EXPECT_EQ(all->rows[1].job.job_id(), "job-b");
  ASSERT_TRUE(store->Update(JobNamed("job-a", v1::JOB_STATE_CANCELLED)).ok());
  absl::StatusOr<JobStore::Changes> next = store->ChangesSince(all->version);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->rows.size(), 1u) << "job-b did not change";
  EXPECT_EQ(next->rows[0].job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_TRUE(store->ChangesSince(next->version)->rows.empty());

  EXPECT_TRUE(store->UpdateIfWaiting(JobNamed("job-b", v1::JOB_STATE_AWAITING_DATA)).ok());
  EXPECT_TRUE(absl::IsAborted(store->UpdateIfWaiting(JobNamed("job-a", v1::JOB_STATE_QUEUED)))) << "job-a ended";
  EXPECT_TRUE(absl::IsNotFound(store->UpdateIfWaiting(JobNamed("job-z", v1::JOB_STATE_QUEUED))));
  absl::StatusOr<std::optional<JobStore::Claim>> taken = store->ClaimNext("w", std::chrono::minutes(1));
  ASSERT_TRUE(taken.ok());
  EXPECT_FALSE(taken->has_value()) << "job-b is awaiting data";
  ASSERT_TRUE(store->UpdateIfWaiting(JobNamed("job-b", v1::JOB_STATE_QUEUED)).ok());
  taken = store->ClaimNext("w", std::chrono::minutes(1));
  ASSERT_TRUE(taken.ok() && taken->has_value());
  EXPECT_TRUE(absl::IsAborted(store->UpdateIfWaiting(JobNamed("job-b", v1::JOB_STATE_CANCELLED)))) << "held";
}

// What one api server deletes, the others read from the change feed (once), even when it was
// deleted through another connection.
TEST_F(SharedJobStoreTest, DeletionsComeThroughTheChangeFeed) {
  std::unique_ptr<JobStore> deleter = OpenShared();
  std::unique_ptr<JobStore> follower = OpenShared();
  ASSERT_NE(deleter, nullptr);
  ASSERT_NE(follower, nullptr);
  ASSERT_TRUE(deleter->Insert(JobNamed("job-a", v1::JOB_STATE_SUCCEEDED)).ok());
  ASSERT_TRUE(deleter->Insert(JobNamed("job-b", v1::JOB_STATE_SUCCEEDED)).ok());
  absl::StatusOr<JobStore::Changes> seen = follower->ChangesSince(0);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->rows.size(), 2u);
  EXPECT_TRUE(seen->deleted.empty());

  ASSERT_TRUE(deleter->Delete("job-a").ok());
  EXPECT_TRUE(absl::IsNotFound(follower->Delete("job-a"))) << "deleted once";
  absl::StatusOr<JobStore::Changes> next = follower->ChangesSince(seen->version);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->rows.empty());
  EXPECT_EQ(next->deleted, std::vector<std::string>{"job-a"});
  const absl::StatusOr<JobStore::Changes> after = follower->ChangesSince(next->version);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->deleted.empty()) << "told once";
  EXPECT_EQ(follower->LoadAll()->size(), 1u);
}

// A job `tenant` submitted with idempotency key `key`.
v1::Job KeyedJob(const std::string& id, const std::string& tenant, const std::string& key) {
  v1::Job job = JobNamed(id, v1::JOB_STATE_QUEUED);
  job.set_tenant(tenant);
  job.set_idempotency_key(key);
  return job;
}

TEST_F(SharedJobStoreTest, ApiServersRacingWithOneIdempotencyKeyStoreOneJob) {
  std::mutex mutex;
  std::vector<std::string> stored;
  std::vector<absl::Status> refused;
  std::vector<std::thread> apis;
  for (int a = 0; a < 4; ++a) {
    apis.emplace_back([&, a] {
      std::unique_ptr<JobStore> store = OpenShared();
      if (store == nullptr) return;
      const std::string id = "job-" + std::to_string(a);
      const absl::StatusOr<int64_t> inserted = store->Insert(KeyedJob(id, "team-a", "retry-1"));
      std::lock_guard<std::mutex> lock(mutex);
      if (inserted.ok()) {
        stored.push_back(id);
      } else {
        refused.push_back(inserted.status());
      }
    });
  }
  for (std::thread& api : apis) api.join();
  ASSERT_EQ(stored.size(), 1u);
  ASSERT_EQ(refused.size(), 3u);
  for (const absl::Status& status : refused) {
    EXPECT_TRUE(absl::IsAlreadyExists(status)) << status;
    EXPECT_NE(status.message().find("idempotency key 'retry-1'"), absl::string_view::npos) << status;
  }

  std::unique_ptr<JobStore> store = OpenShared();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<JobStore::Row>> twin = store->FindByIdempotencyKey("team-a", "retry-1");
  ASSERT_TRUE(twin.ok() && twin->has_value()) << twin.status();
  EXPECT_EQ((*twin)->job.job_id(), stored[0]);
  // Keys are each tenant's own, and jobs without one never collide.
  EXPECT_FALSE(store->FindByIdempotencyKey("team-b", "retry-1")->has_value());
  EXPECT_TRUE(store->Insert(KeyedJob("job-b", "team-b", "retry-1")).ok());
  EXPECT_TRUE(store->Insert(KeyedJob("job-x", "team-a", "")).ok());
  EXPECT_TRUE(store->Insert(KeyedJob("job-y", "team-a", "")).ok());
  EXPECT_FALSE(store->FindByIdempotencyKey("team-a", "")->has_value());
  EXPECT_EQ(store->LoadAll()->size(), 4u);
}

TEST_F(SharedJobStoreTest, RoleAllHasTheStoreToItself) {
  {
    std::unique_ptr<JobStore> shared = OpenShared();
    ASSERT_NE(shared, nullptr);
    ASSERT_TRUE(shared->LoadAll().ok());
    const absl::Status all = OpenJobStore(url_, StoreAccess::kExclusive).status();
    EXPECT_TRUE(absl::IsFailedPrecondition(all)) << all;
  }
  absl::StatusOr<std::unique_ptr<JobStore>> all = OpenJobStore(url_, StoreAccess::kExclusive);
  ASSERT_TRUE(all.ok()) << all.status();
  const absl::Status shared = OpenJobStore(url_, StoreAccess::kShared).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(shared)) << shared;
  EXPECT_NE(shared.message().find("role all"), absl::string_view::npos) << shared;

  testing::TempDir dir;
  const absl::Status sqlite = OpenJobStore("sqlite:" + (dir.path() / "jobs.sqlite").string(), StoreAccess::kShared).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(sqlite)) << sqlite;
}

TEST_F(SharedJobStoreTest, AVersionOneStoreGetsItsStatesAndItsQueuedJobsCanBeClaimed) {
  {
    std::unique_ptr<JobStore> store = OpenShared();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(JobNamed("job-done", v1::JOB_STATE_SUCCEEDED)).ok());
    ASSERT_TRUE(store->Insert(JobNamed("job-waiting", v1::JOB_STATE_QUEUED)).ok());
  }
  {  // the layout version 1 had
    pqxx::connection connection(url_);
    pqxx::work work(connection);
    work.exec0(
        "ALTER TABLE jobs DROP COLUMN state, DROP COLUMN attempt, DROP COLUMN lease_owner, DROP COLUMN lease_expires, "
        "DROP COLUMN cancel_requested, DROP COLUMN version, DROP COLUMN idempotency; DROP TABLE deleted_jobs; "
        "UPDATE ptq_schema SET version = 1");
    work.commit();
  }
  std::unique_ptr<JobStore> store = OpenShared();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<JobStore::Claim>> taken = store->ClaimNext("w", std::chrono::minutes(1));
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  EXPECT_EQ((*taken)->job.job_id(), "job-waiting");
  EXPECT_FALSE(store->ClaimNext("w", std::chrono::minutes(1))->has_value());
}

TEST_F(SharedJobStoreTest, AVersionTwoStoreKeepsEachIdempotencyKeyOnItsFirstJob) {
  {
    std::unique_ptr<JobStore> store = OpenShared();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(KeyedJob("job-first", "team-a", "retry-1")).ok());
    ASSERT_TRUE(store->Insert(KeyedJob("job-old", "", "retry-2")).ok());
  }
  {  // the layout version 2 had, where a second api replica could store another job for a key
    pqxx::connection connection(url_);
    pqxx::work work(connection);
    work.exec0("DROP INDEX jobs_by_idempotency; ALTER TABLE jobs DROP COLUMN idempotency; DROP TABLE deleted_jobs; "
               "UPDATE ptq_schema SET version = 2");
    work.exec_params("INSERT INTO jobs (job_id, job, state) VALUES ('job-second', $1, 1)",
                     pqxx::binarystring(KeyedJob("job-second", "team-a", "retry-1").SerializeAsString()));
    work.commit();
  }
  std::unique_ptr<JobStore> store = OpenShared();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LoadAll()->size(), 3u) << "the upgrade deletes no job";
  absl::StatusOr<std::optional<JobStore::Row>> twin = store->FindByIdempotencyKey("team-a", "retry-1");
  ASSERT_TRUE(twin.ok() && twin->has_value()) << twin.status();
  EXPECT_EQ((*twin)->job.job_id(), "job-first");
  // A job stored before tenants existed is the default tenant's.
  twin = store->FindByIdempotencyKey("default", "retry-2");
  ASSERT_TRUE(twin.ok() && twin->has_value()) << twin.status();
  EXPECT_EQ((*twin)->job.job_id(), "job-old");
  EXPECT_TRUE(absl::IsAlreadyExists(store->Insert(KeyedJob("job-third", "team-a", "retry-1")).status()));
  ASSERT_TRUE(store->Delete("job-second").ok());
  EXPECT_EQ(store->ChangesSince(0)->deleted, std::vector<std::string>{"job-second"}) << "deletions are recorded";
}

TEST_F(SharedJobStoreTest, ASingleServersSqliteJobsMoveToPostgresqlInOrderAndCanBeClaimed) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<JobStore>> sqlite = OpenJobStore("sqlite:" + (dir.path() / "jobs.sqlite").string());
  ASSERT_TRUE(sqlite.ok()) << sqlite.status();
  v1::Job done = JobNamed("job-done", v1::JOB_STATE_SUCCEEDED);
  done.mutable_progress()->set_done(10);
  ASSERT_TRUE((*sqlite)->Insert(JobNamed("job-queued", v1::JOB_STATE_QUEUED)).ok());
  ASSERT_TRUE((*sqlite)->Insert(done).ok());
  ASSERT_TRUE((*sqlite)->Insert(JobNamed("job-failed", v1::JOB_STATE_FAILED)).ok());
  absl::StatusOr<std::unique_ptr<JobStore>> postgres = OpenJobStore(url_);
  ASSERT_TRUE(postgres.ok()) << postgres.status();

  absl::StatusOr<int64_t> copied = CopyJobs(**sqlite, **postgres);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, 3);
  absl::StatusOr<std::vector<JobStore::Row>> rows = (*postgres)->LoadAll();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].job.job_id(), "job-queued");
  EXPECT_EQ((*rows)[1].job.progress().done(), 10);
  EXPECT_EQ((*rows)[2].job.state(), v1::JOB_STATE_FAILED);
  const absl::Status again = CopyJobs(**sqlite, **postgres).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(again)) << again;
  EXPECT_NE(again.message().find("holds 3 jobs already"), absl::string_view::npos) << again;

  postgres->reset();
  std::unique_ptr<JobStore> shared = OpenShared();
  ASSERT_NE(shared, nullptr);
  absl::StatusOr<std::optional<JobStore::Claim>> taken = shared->ClaimNext("w", std::chrono::minutes(1));
  ASSERT_TRUE(taken.ok() && taken->has_value()) << taken.status();
  EXPECT_EQ((*taken)->job.job_id(), "job-queued");
  EXPECT_FALSE(shared->ClaimNext("w", std::chrono::minutes(1))->has_value());
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
