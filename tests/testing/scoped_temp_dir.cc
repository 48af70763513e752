#include "tests/testing/scoped_temp_dir.h"

#include <stdlib.h>

#include <system_error>

#include "gtest/gtest.h"

namespace runnel::testing {

ScopedTempDir::ScopedTempDir() {
  std::string pattern = ::testing::TempDir() + "runnel-XXXXXX";
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
  }
  path_ = pattern;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace runnel::testing
