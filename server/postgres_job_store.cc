#include "postgres_job_store.h"

#include <pqxx/pqxx>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

namespace ptq::server {
namespace {

constexpr int kSchemaVersion = 1;
// pg_advisory_xact_lock key that serialises schema changes between replicas ("ptq" in ASCII).
constexpr int64_t kSchemaLockKey = 0x707471;
// Session lock the one server that uses the store holds ("ptqo"): two servers would both
// recover and run the same queued jobs.
constexpr int64_t kOwnerLockKey = 0x7074716f;
// A server that just went (a restart, a crash) holds the owner lock until PostgreSQL has ended
// its backend, which happens after the client side has closed: the lock is asked for again
// for this long before the store counts as taken.
constexpr std::chrono::seconds kOwnerLockWait{5};
constexpr std::chrono::milliseconds kOwnerLockPoll{100};

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS ptq_schema (version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  sequence bigserial PRIMARY KEY,"
    "  job_id text NOT NULL UNIQUE,"
    "  job bytea NOT NULL);"
    "CREATE TABLE IF NOT EXISTS quarantined_jobs ("
    "  sequence bigint PRIMARY KEY,"
    "  job_id text NOT NULL,"
    "  job bytea,"
    "  quarantined_at timestamptz NOT NULL DEFAULT now());";

// libpq's messages end with a line break, some span several lines: the first says why.
std::string Reason(const std::exception& error) {
  std::string text = error.what();
  return text.substr(0, text.find('\n'));
}

}  // namespace

struct PostgresJobStore::Connection {
  explicit Connection(const std::string& url) : pq(url) {}
  pqxx::connection pq;
};

struct PostgresJobStore::Transaction {
  pqxx::work& work;
};

PostgresJobStore::PostgresJobStore(std::string url) : url_(std::move(url)) {}

PostgresJobStore::~PostgresJobStore() = default;

absl::StatusOr<std::unique_ptr<JobStore>> PostgresJobStore::Open(const std::string& url) {
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore(url));
  absl::Status migrated = store->Transact("cannot prepare the PostgreSQL job store", [](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    work.exec_params("SELECT pg_advisory_xact_lock($1)", kSchemaLockKey);
    work.exec0(kSchema);
    const pqxx::result version = work.exec("SELECT version FROM ptq_schema");
    if (version.empty()) {
      work.exec_params("INSERT INTO ptq_schema (version) VALUES ($1)", kSchemaVersion);
      return absl::OkStatus();
    }
    const int stored = version[0][0].as<int>();
    if (stored > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("the PostgreSQL job store has schema version ", stored,
                                                        ", newer than this ptq-server's ", kSchemaVersion));
    }
    work.exec_params("UPDATE ptq_schema SET version = $1", kSchemaVersion);
    return absl::OkStatus();
  });
  if (!migrated.ok()) return migrated;
  return store;
}

absl::Status PostgresJobStore::Transact(const char* what, const std::function<absl::Status(Transaction&)>& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    if (connection_ == nullptr) {
      auto connection = std::make_unique<Connection>(url_);
      {
        pqxx::nontransaction claim(connection->pq);
        const auto give_up = std::chrono::steady_clock::now() + kOwnerLockWait;
        while (!claim.exec_params1("SELECT pg_try_advisory_lock($1)", kOwnerLockKey)[0].as<bool>()) {
          if (std::chrono::steady_clock::now() >= give_up) {
            return absl::FailedPreconditionError(absl::StrCat(
                what, ": another ptq-server uses this PostgreSQL job store (one server per store)"));
          }
          std::this_thread::sleep_for(kOwnerLockPoll);
        }
      }
      connection_ = std::move(connection);
    }
    pqxx::work work(connection_->pq);
    Transaction transaction{work};
    absl::Status status = body(transaction);
    if (status.ok()) work.commit();
    return status;
  } catch (const pqxx::broken_connection& error) {
    connection_.reset();
    return absl::UnavailableError(absl::StrCat(what, ": the database cannot be reached: ", Reason(error)));
  } catch (const pqxx::unique_violation& error) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": ", Reason(error)));
  } catch (const std::exception& error) {
    return absl::InternalError(absl::StrCat(what, ": ", Reason(error)));
  }
}

absl::StatusOr<int64_t> PostgresJobStore::Insert(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  int64_t sequence = 0;
  absl::Status inserted = Transact("cannot insert job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    sequence = work.exec_params1("INSERT INTO jobs (job_id, job) VALUES ($1, $2) RETURNING sequence", job.job_id(),
                                 pqxx::binarystring(blob))[0]
                   .as<int64_t>();
    return absl::OkStatus();
  });
  if (!inserted.ok()) return inserted;
  return sequence;
}

absl::Status PostgresJobStore::Update(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  return Transact("cannot update job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    const pqxx::result changed =
        work.exec_params("UPDATE jobs SET job = $1 WHERE job_id = $2", pqxx::binarystring(blob), job.job_id());
    if (changed.affected_rows() != 1) return absl::NotFoundError(absl::StrCat("job '", job.job_id(), "' is not stored"));
    return absl::OkStatus();
  });
}

absl::Status PostgresJobStore::Delete(const std::string& job_id) {
  return Transact("cannot delete job", [&](Transaction& transaction) {
    const pqxx::result deleted = transaction.work.exec_params("DELETE FROM jobs WHERE job_id = $1", job_id);
    if (deleted.affected_rows() != 1) return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not stored"));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<JobStore::Row>> PostgresJobStore::LoadAll() {
  std::vector<Row> rows;
  absl::Status loaded = Transact("cannot read jobs", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    for (const pqxx::row& stored : work.exec("SELECT sequence, job FROM jobs ORDER BY sequence")) {
      Row row;
      row.sequence = stored[0].as<int64_t>();
      const pqxx::binarystring blob(stored[1]);
      if (!row.job.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) {
        return absl::DataLossError(absl::StrCat("job row ", row.sequence, " of the job store does not parse"));
      }
      rows.push_back(std::move(row));
    }
    return absl::OkStatus();
  });
  if (!loaded.ok()) return loaded;
  return rows;
}

absl::StatusOr<std::vector<int64_t>> PostgresJobStore::QuarantineUnreadableRows() {
  std::vector<int64_t> unreadable;
  absl::Status moved = Transact("cannot quarantine job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    v1::Job job;
    for (const pqxx::row& stored : work.exec("SELECT sequence, job FROM jobs")) {
      const pqxx::binarystring blob(stored[1]);
      if (!job.ParseFromArray(blob.data(), static_cast<int>(blob.size()))) unreadable.push_back(stored[0].as<int64_t>());
    }
    for (int64_t sequence : unreadable) {
      work.exec_params(
          "INSERT INTO quarantined_jobs (sequence, job_id, job) SELECT sequence, job_id, job FROM jobs "
          "WHERE sequence = $1 ON CONFLICT (sequence) DO UPDATE SET job_id = EXCLUDED.job_id, job = EXCLUDED.job",
          sequence);
      work.exec_params("DELETE FROM jobs WHERE sequence = $1", sequence);
    }
    return absl::OkStatus();
  });
  if (!moved.ok()) return moved;
  return unreadable;
}

}  // namespace ptq::server
