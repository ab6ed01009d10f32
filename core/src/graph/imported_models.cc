#include "graph/imported_models.h"

#include <sys/stat.h>

#include <list>
#include <mutex>
#include <tuple>
#include <utility>

#include "graph/torchscript_import.h"

namespace ptq::core {
namespace {

constexpr size_t kMaxModels = 4;
constexpr int64_t kMaxBytes = int64_t{256} << 20;

struct FileIdentity {
  std::string path;
  int64_t size = 0;
  int64_t modified_ns = 0;
  bool operator==(const FileIdentity& other) const {
    return std::tie(path, size, modified_ns) == std::tie(other.path, other.size, other.modified_ns);
  }
};

struct KeptModel {
  FileIdentity file;
  Graph graph;
  int64_t bytes = 0;
};

int64_t WeightBytes(const Graph& graph) {
  int64_t bytes = 0;
  for (const Node& node : graph.nodes) {
    for (const at::Tensor* tensor : {&node.weight, &node.bias, &node.running_mean, &node.running_var}) {
      if (tensor->defined()) bytes += static_cast<int64_t>(tensor->nbytes());
    }
  }
  return bytes;
}

class ImportedModels {
 public:
  absl::StatusOr<Graph> Import(const std::string& path) {
    struct stat status;
    if (stat(path.c_str(), &status) != 0) return ImportTorchScript(path);  // it names the problem
    const FileIdentity file{path, static_cast<int64_t>(status.st_size),
                            int64_t{status.st_mtim.tv_sec} * 1000000000 + status.st_mtim.tv_nsec};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = kept_.begin(); it != kept_.end(); ++it) {
        if (it->file == file) {
          kept_.splice(kept_.begin(), kept_, it);  // most recently used first
          ++hits_;
          return kept_.front().graph;
        }
      }
    }
    // Imported outside the lock: a worker importing another model does not wait for this one.
    absl::StatusOr<Graph> graph = ImportTorchScript(path);
    if (!graph.ok()) return graph.status();
    const int64_t bytes = WeightBytes(*graph);
    std::lock_guard<std::mutex> lock(mutex_);
    kept_.remove_if([&](const KeptModel& kept) { return kept.file.path == path; });
    kept_.push_front({file, *graph, bytes});
    int64_t total = 0;
    auto it = kept_.begin();
    for (size_t count = 0; it != kept_.end(); ++it, ++count) {
      if (count == kMaxModels || total + it->bytes > kMaxBytes) break;
      total += it->bytes;
    }
    kept_.erase(it, kept_.end());
    return graph;
  }

  int64_t hits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return hits_;
  }

 private:
  std::mutex mutex_;
  std::list<KeptModel> kept_;
  int64_t hits_ = 0;
};

ImportedModels& Process() {
  static ImportedModels* models = new ImportedModels();  // never destroyed: workers may outlive main
  return *models;
}

}  // namespace

absl::StatusOr<Graph> ImportTorchScriptOnce(const std::string& path) { return Process().Import(path); }

int64_t ImportedModelHits() { return Process().hits(); }

}  // namespace ptq::core
