#include "client_visible_paths.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_env.h"

namespace ptq::server {
namespace {
namespace fs = std::filesystem;

TEST(ClientVisiblePathsTest, PathsBecomeRelativeToTheFolderAClientKnows) {
  const ClientVisiblePaths paths("/srv/ptq/state", "/srv/data");
  EXPECT_EQ(paths.Rewrite("model '/srv/ptq/state/models/ab12/model.pt': unsupported op 'aten::sin'"),
            "model 'models/ab12/model.pt': unsupported op 'aten::sin'");
  EXPECT_EQ(paths.Rewrite("dataset '/srv/data/imagenet/val' has no val_list.txt"),
            "dataset 'imagenet/val' has no val_list.txt");
  EXPECT_EQ(paths.Rewrite("data root '/srv/data': No such file or directory"),
            "data root 'the data root': No such file or directory");
  EXPECT_EQ(paths.Rewrite("cannot write '/srv/ptq/state'"), "cannot write 'the state directory'");
  EXPECT_EQ(paths.Rewrite("'/srv/database/x' and /srv/ptq/state2 and /x/srv/data/y are other folders"),
            "'/srv/database/x' and /srv/ptq/state2 and /x/srv/data/y are other folders");
  EXPECT_EQ(paths.Rewrite(absl::NotFoundError("'/srv/data/a' is missing")), absl::NotFoundError("'a' is missing"));
}

TEST(ClientVisiblePathsTest, GivenRelativeAndSymlinkedSpellingsAreAllRewritten) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "real" / "data");
  fs::create_directory_symlink(dir.path() / "real", dir.path() / "link");
  const ClientVisiblePaths paths("state", dir.path() / "link" / "data");
  const std::string canonical = fs::canonical(dir.path() / "link" / "data").string();
  EXPECT_EQ(paths.Rewrite("'" + canonical + "/mnist/train' leads outside"), "'mnist/train' leads outside");
  EXPECT_EQ(paths.Rewrite("'" + (dir.path() / "link" / "data").string() + "/x'"), "'x'");
  EXPECT_EQ(paths.Rewrite("cannot read 'state/models/ab/model.json'"), "cannot read 'models/ab/model.json'");
  EXPECT_EQ(paths.Rewrite("the state of job-1 is QUEUED; state: ok, upstate/x"),
            "the state of job-1 is QUEUED; state: ok, upstate/x")
      << "a relative folder's name is a word, too";
  EXPECT_EQ(paths.Rewrite("cannot read '" + fs::absolute("state").string() + "/jobs.sqlite'"),
            "cannot read 'jobs.sqlite'");
}

}  // namespace
}  // namespace ptq::server
