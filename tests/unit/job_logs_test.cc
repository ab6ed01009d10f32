// Each job's own log: which server lines reach it, paths as clients see them, its size cap.
#include "job_logs.h"

#include <gtest/gtest.h>

#include "spdlog/logger.h"
#include "test_env.h"

namespace ptq::server {
namespace {

constexpr char kJob[] = "job-0123456789abcdef";

TEST(JobLogsTest, TheSinkKeepsTheLinesThatNameAJobAndNotTheAuditLines) {
  testing::TempDir dir;
  JobLogs logs(dir.path() / "logs", ClientVisiblePaths((dir.path() / "state").string(), ""));
  spdlog::logger logger("test", logs.Sink());
  logger.info("job {} submitted ('a', model m, server data, 2 x 16 calibration) -> QUEUED", kJob);
  logger.info("audit method=CancelJob who=x tenant=t role=submitter job={} result=OK", kJob);
  logger.info("ptq-server listening on 127.0.0.1:1");
  logger.warn("job job-ffffffffffffffff QUEUED -> CALIBRATING");
  logger.warn("job {} CALIBRATING -> FAILED on cpu: cannot read '{}'", kJob, (dir.path() / "state" / "f").string());
  absl::StatusOr<std::vector<std::string>> lines = logs.Read(kJob);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_NE((*lines)[0].find("] [info] job job-0123456789abcdef submitted ('a'"), std::string::npos) << (*lines)[0];
  // The state directory's path is the client's view of it, not the server's.
  EXPECT_NE((*lines)[1].find("] [warning] job job-0123456789abcdef CALIBRATING -> FAILED on cpu: cannot read 'f'"),
            std::string::npos)
      << (*lines)[1];
  EXPECT_EQ(logs.Read("job-ffffffffffffffff")->size(), 1u);
  EXPECT_TRUE(logs.Read("job-1111111111111111")->empty());
}

TEST(JobLogsTest, AJobsLogStopsAtItsCapSayingSo) {
  testing::TempDir dir;
  JobLogs logs(dir.path() / "logs", ClientVisiblePaths((dir.path() / "state").string(), ""));
  const std::string line(1023, 'x');  // 1 KiB with its newline
  for (int i = 0; i < 1100; ++i) logs.Append(kJob, line);
  std::vector<std::string> lines = *logs.Read(kJob);
  // 1023 lines leave less than 1 KiB: the 1024th would not leave room for the closing line.
  ASSERT_EQ(lines.size(), 1024u);
  EXPECT_LE(std::filesystem::file_size(dir.path() / "logs" / (std::string(kJob) + ".log")), JobLogs::kMaxBytesPerJob);
  EXPECT_EQ(lines.back(), "(this job's log stops here: it reached 1024 KiB)");
  // A new JobLogs over the same folder (a restart) knows the file is full.
  JobLogs restarted(dir.path() / "logs", ClientVisiblePaths((dir.path() / "state").string(), ""));
  restarted.Append(kJob, "more");
  EXPECT_EQ(restarted.Read(kJob)->size(), 1024u);
}

}  // namespace
}  // namespace ptq::server
