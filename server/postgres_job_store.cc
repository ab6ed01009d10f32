#include "postgres_job_store.h"

#include <pqxx/pqxx>

#include <chrono>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tenant_scope.h"

namespace ptq::server {
namespace {

// 1: jobs and quarantined_jobs. 2: each job's state, lease (owner, expiry, attempt), cancel
// request and change version as columns, for the api and worker roles. 3: each job's tenant
// and idempotency key as a unique column, so that api replicas never make two jobs of one key,
// and deleted_jobs, so that they hear of each other's deletions.
constexpr int kSchemaVersion = 3;
// pg_advisory_xact_lock key that serialises schema changes between replicas ("ptq" in ASCII).
constexpr int64_t kSchemaLockKey = 0x707471;
// Session lock of the servers on the store ("ptqo"): a server of role all holds it exclusively
// (two would both recover and run the same queued jobs), the api and worker roles shared.
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

// A write's change version: its transaction's id. Every transaction that began before a
// snapshot's xmin has ended, so a reader that goes on from that xmin misses no change.
#define PTQ_CHANGE_VERSION "pg_current_xact_id()::text::bigint"

constexpr char kSchemaV2[] =
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS state integer;"
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS attempt bigint NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_owner text;"
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_expires timestamptz;"
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS cancel_requested boolean NOT NULL DEFAULT false;"
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT " PTQ_CHANGE_VERSION ";"
    "CREATE INDEX IF NOT EXISTS jobs_by_version ON jobs (version);"
    "CREATE INDEX IF NOT EXISTS jobs_claimable ON jobs (sequence) WHERE state = 1 OR lease_owner IS NOT NULL;";

// A job's tenant and idempotency key in the `idempotency` column (NULL without a key, and
// NULLs never collide); tenant names hold no newline, and a job stored before tenants existed
// is the default tenant's, as JobRegistry files it.
constexpr char kSchemaV3[] =
    "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS idempotency text;"
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_idempotency ON jobs (idempotency);"
    "CREATE TABLE IF NOT EXISTS deleted_jobs ("
    "  job_id text PRIMARY KEY,"
    "  version bigint NOT NULL,"
    "  deleted_at timestamptz NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deleted_jobs_by_version ON deleted_jobs (version);";

std::optional<std::string> IdempotencyOf(const std::string& tenant, const std::string& key) {
  if (key.empty()) return std::nullopt;
  return absl::StrCat(tenant.empty() ? kDefaultTenant : tenant, "\n", key);
}

// The lease's row, checked: its holder, attempt and expiry.
constexpr char kHeld[] = "job_id = $1 AND lease_owner = $2 AND attempt = $3 AND lease_expires >= clock_timestamp()";

// A row's serialized v1::Job into `job`; false when it does not parse (Unparsable says so).
bool ParseJob(const pqxx::field& field, v1::Job& job) {
  const pqxx::binarystring blob(field);
  return job.ParseFromArray(blob.data(), static_cast<int>(blob.size()));
}

absl::Status Unparsable(int64_t sequence) {
  return absl::DataLossError(absl::StrCat("job row ", sequence, " of the job store does not parse"));
}

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

PostgresJobStore::PostgresJobStore(std::string url, StoreAccess access) : url_(std::move(url)), access_(access) {}

PostgresJobStore::~PostgresJobStore() = default;

absl::StatusOr<std::unique_ptr<JobStore>> PostgresJobStore::Open(const std::string& url, StoreAccess access) {
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore(url, access));
  absl::Status migrated = store->Transact("cannot prepare the PostgreSQL job store", [](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    work.exec_params("SELECT pg_advisory_xact_lock($1)", kSchemaLockKey);
    work.exec0(kSchema);
    const pqxx::result version = work.exec("SELECT version FROM ptq_schema");
    // Tables just created have version 1's layout.
    const int stored = version.empty() ? 1 : version[0][0].as<int>();
    if (stored > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("the PostgreSQL job store has schema version ", stored,
                                                        ", newer than this ptq-server's ", kSchemaVersion));
    }
    if (stored == kSchemaVersion) return absl::OkStatus();
    // ALTER TABLE locks the table even when it has nothing to do: only when upgrading, so a
    // server starting does not hold up the others' claims and writes. Rows that do not parse
    // get no state (never claimed) and no key, until QuarantineUnreadableRows moves them.
    v1::Job job;
    if (stored < 2) {
      work.exec0(kSchemaV2);
      for (const pqxx::row& row : work.exec("SELECT sequence, job FROM jobs WHERE state IS NULL")) {
        if (!ParseJob(row[1], job)) continue;
        work.exec_params("UPDATE jobs SET state = $1 WHERE sequence = $2", static_cast<int>(job.state()),
                         row[0].as<int64_t>());
      }
    }
    if (stored < 3) {
      work.exec0(kSchemaV3);
      // Replicas before version 3 could make two jobs of one key: the first submitted keeps it.
      std::set<std::string> filed;
      for (const pqxx::row& row : work.exec("SELECT sequence, job FROM jobs ORDER BY sequence")) {
        if (!ParseJob(row[1], job)) continue;
        const std::optional<std::string> idempotency = IdempotencyOf(job.tenant(), job.idempotency_key());
        if (!idempotency || !filed.insert(*idempotency).second) continue;
        work.exec_params("UPDATE jobs SET idempotency = $1 WHERE sequence = $2", *idempotency, row[0].as<int64_t>());
      }
    }
    if (version.empty()) {
      work.exec_params("INSERT INTO ptq_schema (version) VALUES ($1)", kSchemaVersion);
    } else {
      work.exec_params("UPDATE ptq_schema SET version = $1", kSchemaVersion);
    }
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
        const char* lock = access_ == StoreAccess::kExclusive ? "SELECT pg_try_advisory_lock($1)"
                                                              : "SELECT pg_try_advisory_lock_shared($1)";
        while (!claim.exec_params1(lock, kOwnerLockKey)[0].as<bool>()) {
          if (std::chrono::steady_clock::now() >= give_up) {
            return absl::FailedPreconditionError(absl::StrCat(
                what, access_ == StoreAccess::kExclusive
                          ? ": another ptq-server uses this PostgreSQL job store (one server of role all per "
                            "store; servers of the api and worker roles share one)"
                          : ": a ptq-server of role all uses this PostgreSQL job store, which it does not share"));
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
    const std::optional<std::string> idempotency = IdempotencyOf(job.tenant(), job.idempotency_key());
    const pqxx::result row = work.exec_params(
        "INSERT INTO jobs (job_id, job, state, idempotency) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (idempotency) DO NOTHING RETURNING sequence",
        job.job_id(), pqxx::binarystring(blob), static_cast<int>(job.state()), idempotency);
    if (row.empty()) {
      return absl::AlreadyExistsError(absl::StrCat("tenant '", job.tenant(), "' has a job with idempotency key '",
                                                   job.idempotency_key(), "' already"));
    }
    sequence = row[0][0].as<int64_t>();
    return absl::OkStatus();
  });
  if (!inserted.ok()) return inserted;
  return sequence;
}

absl::StatusOr<std::optional<JobStore::Row>> PostgresJobStore::FindByIdempotencyKey(const std::string& tenant,
                                                                                   const std::string& key) {
  std::optional<Row> found;
  absl::Status read = Transact("cannot look up an idempotency key", [&](Transaction& transaction) {
    const std::optional<std::string> idempotency = IdempotencyOf(tenant, key);
    if (!idempotency) return absl::OkStatus();
    const pqxx::result stored =
        transaction.work.exec_params("SELECT sequence, job FROM jobs WHERE idempotency = $1", *idempotency);
    if (stored.empty()) return absl::OkStatus();
    Row row;
    row.sequence = stored[0][0].as<int64_t>();
    if (!ParseJob(stored[0][1], row.job)) return Unparsable(row.sequence);
    found = std::move(row);
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return found;
}

absl::Status PostgresJobStore::Update(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  return Transact("cannot update job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    const pqxx::result changed = work.exec_params(
        "UPDATE jobs SET job = $1, state = $2, version = " PTQ_CHANGE_VERSION
        " WHERE job_id = $3 AND lease_owner IS NULL RETURNING 1",
        pqxx::binarystring(blob), static_cast<int>(job.state()), job.job_id());
    if (!changed.empty()) return absl::OkStatus();
    const pqxx::result holder = work.exec_params("SELECT lease_owner FROM jobs WHERE job_id = $1", job.job_id());
    if (holder.empty()) return absl::NotFoundError(absl::StrCat("job '", job.job_id(), "' is not stored"));
    return absl::AbortedError(
        absl::StrCat("job '", job.job_id(), "' is held by worker ", holder[0][0].as<std::string>("?")));
  });
}

absl::Status PostgresJobStore::Delete(const std::string& job_id) {
  return Transact("cannot delete job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    const pqxx::result deleted = work.exec_params("DELETE FROM jobs WHERE job_id = $1", job_id);
    if (deleted.affected_rows() != 1) return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not stored"));
    // For the other servers' ChangesSince; deletions older than kDeletionMemory go meanwhile.
    work.exec_params("INSERT INTO deleted_jobs (job_id, version, deleted_at) VALUES ($1, " PTQ_CHANGE_VERSION
                     ", now()) ON CONFLICT (job_id) DO NOTHING",
                     job_id);
    work.exec_params("DELETE FROM deleted_jobs WHERE deleted_at < now() - $1 * interval '1 second'",
                     static_cast<int64_t>(std::chrono::seconds(kDeletionMemory).count()));
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
      if (!ParseJob(stored[1], row.job)) return Unparsable(row.sequence);
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
      if (!ParseJob(stored[1], job)) unreadable.push_back(stored[0].as<int64_t>());
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

absl::StatusOr<std::optional<JobStore::Claim>> PostgresJobStore::ClaimNext(const std::string& owner,
                                                                          std::chrono::milliseconds ttl) {
  std::optional<Claim> claim;
  absl::Status claimed = Transact("cannot claim a job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    const pqxx::result next = work.exec(
        "SELECT sequence, job FROM jobs WHERE (state = 1 AND lease_owner IS NULL) OR "
        "(lease_owner IS NOT NULL AND lease_expires < clock_timestamp()) "
        "ORDER BY sequence LIMIT 1 FOR UPDATE SKIP LOCKED");
    if (next.empty()) return absl::OkStatus();
    const int64_t sequence = next[0][0].as<int64_t>();
    Claim taken;
    if (!ParseJob(next[0][1], taken.job)) return Unparsable(sequence);
    taken.lease.job_id = taken.job.job_id();
    taken.lease.owner = owner;
    taken.lease.attempt =
        work.exec_params1("UPDATE jobs SET lease_owner = $1, lease_expires = clock_timestamp() + $2 * interval "
                          "'1 millisecond', attempt = attempt + 1 WHERE sequence = $3 RETURNING attempt",
                          owner, static_cast<int64_t>(ttl.count()), sequence)[0]
            .as<int64_t>();
    claim = std::move(taken);
    return absl::OkStatus();
  });
  if (!claimed.ok()) return claimed;
  return claim;
}

absl::StatusOr<bool> PostgresJobStore::RenewLease(const Lease& lease, std::chrono::milliseconds ttl) {
  bool cancel_requested = false;
  absl::Status renewed = Transact("cannot renew a lease", [&](Transaction& transaction) {
    const pqxx::result held = transaction.work.exec_params(
        absl::StrCat("UPDATE jobs SET lease_expires = clock_timestamp() + $4 * interval '1 millisecond' WHERE ", kHeld,
                     " RETURNING cancel_requested"),
        lease.job_id, lease.owner, lease.attempt, static_cast<int64_t>(ttl.count()));
    if (held.empty()) return absl::AbortedError(absl::StrCat("the lease on job '", lease.job_id, "' is lost"));
    cancel_requested = held[0][0].as<bool>();
    return absl::OkStatus();
  });
  if (!renewed.ok()) return renewed;
  return cancel_requested;
}

absl::Status PostgresJobStore::UpdateLeased(const Lease& lease, const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  return Transact("cannot update a leased job", [&](Transaction& transaction) {
    const pqxx::result changed = transaction.work.exec_params(
        absl::StrCat("UPDATE jobs SET job = $4, state = $5, version = " PTQ_CHANGE_VERSION " WHERE ", kHeld,
                     " RETURNING 1"),
        lease.job_id, lease.owner, lease.attempt, pqxx::binarystring(blob), static_cast<int>(job.state()));
    if (changed.empty()) return absl::AbortedError(absl::StrCat("the lease on job '", lease.job_id, "' is lost"));
    return absl::OkStatus();
  });
}

absl::Status PostgresJobStore::Finish(const Lease& lease, const v1::Job& job,
                                      const std::function<absl::Status()>& publish) {
  const std::string blob = job.SerializeAsString();
  return Transact("cannot finish a leased job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    if (work.exec_params(absl::StrCat("SELECT 1 FROM jobs WHERE ", kHeld, " FOR UPDATE"), lease.job_id, lease.owner,
                         lease.attempt)
            .empty()) {
      return absl::AbortedError(absl::StrCat("the lease on job '", lease.job_id, "' is lost"));
    }
    // The row stays locked until the commit: no claimer can take the job over in between.
    if (absl::Status published = publish(); !published.ok()) return published;
    work.exec_params("UPDATE jobs SET job = $2, state = $3, lease_owner = NULL, lease_expires = NULL, version = "
                     PTQ_CHANGE_VERSION " WHERE job_id = $1",
                     lease.job_id, pqxx::binarystring(blob), static_cast<int>(job.state()));
    return absl::OkStatus();
  });
}

absl::Status PostgresJobStore::UpdateIfWaiting(const v1::Job& job) {
  const std::string blob = job.SerializeAsString();
  return Transact("cannot update job", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    const pqxx::result changed = work.exec_params(
        "UPDATE jobs SET job = $1, state = $2, version = " PTQ_CHANGE_VERSION
        " WHERE job_id = $3 AND lease_owner IS NULL AND state IN (1, 2) RETURNING 1",
        pqxx::binarystring(blob), static_cast<int>(job.state()), job.job_id());
    if (!changed.empty()) return absl::OkStatus();
    if (work.exec_params("SELECT 1 FROM jobs WHERE job_id = $1", job.job_id()).empty()) {
      return absl::NotFoundError(absl::StrCat("job '", job.job_id(), "' is not stored"));
    }
    return absl::AbortedError(absl::StrCat("job '", job.job_id(), "' is no longer waiting: a worker took it"));
  });
}

absl::Status PostgresJobStore::RequestCancel(const std::string& job_id) {
  return Transact("cannot request a cancel", [&](Transaction& transaction) {
    if (transaction.work.exec_params("UPDATE jobs SET cancel_requested = true WHERE job_id = $1 RETURNING 1", job_id)
            .empty()) {
      return absl::NotFoundError(absl::StrCat("job '", job_id, "' is not stored"));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<JobStore::Changes> PostgresJobStore::ChangesSince(int64_t version) {
  Changes changes;
  absl::Status read = Transact("cannot read changed jobs", [&](Transaction& transaction) {
    pqxx::work& work = transaction.work;
    // Read first: a change committed after this snapshot has a version at or above its xmin.
    changes.version = work.exec1("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")[0].as<int64_t>();
    for (const pqxx::row& row : work.exec_params(
             "SELECT sequence, job FROM jobs WHERE version >= $1 ORDER BY version, sequence", version)) {
      Row changed;
      changed.sequence = row[0].as<int64_t>();
      if (ParseJob(row[1], changed.job)) changes.rows.push_back(changed);
    }
    for (const pqxx::row& row :
         work.exec_params("SELECT job_id FROM deleted_jobs WHERE version >= $1 ORDER BY version", version)) {
      changes.deleted.push_back(row[0].as<std::string>());
    }
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return changes;
}

}  // namespace ptq::server
