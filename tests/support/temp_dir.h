// TempDir: a fresh directory for one test, removed with everything in it (and anything the test
// mounted on it) at the end. Header-only so that unit tests, which do not link the integration
// harness, share it with the integration tests.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace tidepool::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "tidepool-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    std::error_code ec;
    // A test may have taken its own permissions away (an unusable spool directory).
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

  // Mounts a tmpfs of `options` (e.g. "size=256k") on path()/name; false, and nothing
  // mounted, when not allowed (mounting needs root).
  bool mount_tmpfs(const std::string& name, const std::string& options) {
    const std::string target = path_ + "/" + name;
    std::filesystem::create_directories(target);
    if (::mount("tmpfs", target.c_str(), "tmpfs", 0, options.c_str()) != 0) return false;
    mounts_.push_back(target);
    return true;
  }

 private:
  std::string path_;
  std::vector<std::string> mounts_;  // unmounted, last first, before the removal
};

}  // namespace tidepool::test
