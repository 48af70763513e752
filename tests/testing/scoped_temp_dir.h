#pragma once

#include <filesystem>
#include <string>

namespace runnel::testing {

// A fresh directory under ::testing::TempDir(), removed with everything in it
// when the object is destroyed. Thread-compatible.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace runnel::testing
