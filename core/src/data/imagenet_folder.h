#ifndef PTQ_CORE_SRC_DATA_IMAGENET_FOLDER_H_
#define PTQ_CORE_SRC_DATA_IMAGENET_FOLDER_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/image_loader.h"
#include "ptq/core/preprocess.h"

namespace ptq::core {

// One line of val_list.txt.
struct ListedImage {
  std::string relative_path;  // as written, e.g. "val/n01440764_tench.JPEG"
  int32_t label = 0;
  int line = 0;               // 1-based line number, for error messages
};

// Parses val_list.txt's text ("FILE LABEL" per line; blank lines skipped). INVALID_ARGUMENT
// naming `list_name` and the line for a malformed line, a path that leaves the dataset folder,
// or (num_classes > 0) a label outside [0, num_classes).
absl::StatusOr<std::vector<ListedImage>> ParseImageList(const std::string& text,
                                                        const std::string& list_name,
                                                        int num_classes);

// The seed's ImageNet layout: `root`/val_list.txt listing images under `root`. Open checks that
// every listed file exists and, when `confine_to` is set, that it and the list resolve to paths
// below that folder (CheckConfined); Load decodes with OpenCV. A folder without val_list.txt
// offers every image file below it (.jpg .jpeg .png .bmp .pgm .ppm .pnm .webp), unlabelled, in
// path order, unless `require_labels` (then NOT_FOUND naming val_list.txt, as before).
class ImageNetFolderLoader : public ImageLoader {
 public:
  static absl::StatusOr<std::unique_ptr<ImageNetFolderLoader>> Open(const std::filesystem::path& root,
                                                                    const PreprocessSpec& spec, int num_classes,
                                                                    const std::filesystem::path& confine_to = {},
                                                                    bool require_labels = false);

  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  absl::Status Load(int64_t index, float* out, int32_t* label) const override;

 private:
  ImageNetFolderLoader(std::filesystem::path root, std::vector<ListedImage> images,
                       PreprocessSpec spec);

  std::filesystem::path root_;
  std::vector<ListedImage> images_;
  PreprocessSpec spec_;
};

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_DATA_IMAGENET_FOLDER_H_
