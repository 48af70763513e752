#include "log/file_reaper.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gtest/gtest.h"

#include "tests/testing/scoped_temp_dir.h"

namespace runnel::log {
namespace {

namespace fs = std::filesystem;

void WriteFile(const std::string& path, size_t bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << std::string(bytes, 'x');
}

FileReaperOptions Manual() {
  return FileReaperOptions{.step_bytes = 1 << 20,
                           .step_pause = absl::ZeroDuration(),
                           .start_thread = false};
}

TEST(FileReaperTest, DeletesAFileInSteps) {
  runnel::testing::ScopedTempDir dir;
  const std::string path = dir.Sub("a.log.deleted");
  WriteFile(path, (5 << 20) + 123);
  FileReaper reaper(Manual());
  reaper.Add(path);
  EXPECT_EQ(reaper.pending(), 1u);
  EXPECT_EQ(reaper.DeleteReady(), 0u);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(reaper.pending(), 0u);
}

TEST(FileReaperTest, WaitsUntilTheHolderIsGone) {
  runnel::testing::ScopedTempDir dir;
  const std::string path = dir.Sub("b.log.deleted");
  WriteFile(path, 3 << 20);
  auto reader = std::make_shared<int>(1);  // a reader still using the file
  FileReaper reaper(Manual());
  reaper.Add(path, reader);
  EXPECT_EQ(reaper.DeleteReady(), 1u);
  EXPECT_EQ(fs::file_size(path), 3u << 20) << "not shrunk under its reader";
  reader.reset();
  EXPECT_EQ(reaper.DeleteReady(), 0u);
  EXPECT_FALSE(fs::exists(path));
}

TEST(FileReaperTest, DeletesADirectoryTreeAndToleratesMissingPaths) {
  runnel::testing::ScopedTempDir dir;
  const std::string tree = dir.Sub("t-0.123.deleted");
  fs::create_directories(tree + "/sub");
  WriteFile(tree + "/00000000000000000000.log", 2 << 20);
  WriteFile(tree + "/sub/x", 10);
  FileReaper reaper(Manual());
  reaper.Add(tree);
  reaper.Add(dir.Sub("never-existed"));
  EXPECT_EQ(reaper.DeleteReady(), 0u);
  EXPECT_FALSE(fs::exists(tree));
}

TEST(FileReaperTest, StopDeletesWhatIsLeftAndLaterAddsAtOnce) {
  runnel::testing::ScopedTempDir dir;
  const std::string held = dir.Sub("held");
  const std::string later = dir.Sub("later");
  WriteFile(held, 1 << 20);
  WriteFile(later, 1 << 20);
  auto reader = std::make_shared<int>(1);
  // With its thread: Stop ends it, then deletes what is queued, whatever
  // the holders (the owner closed its files first).
  FileReaper reaper(FileReaperOptions{.step_bytes = 1 << 20,
                                      .step_pause = absl::Seconds(30)});
  reaper.Add(held, reader);
  reaper.Stop();
  EXPECT_FALSE(fs::exists(held));
  reaper.Add(later);
  EXPECT_FALSE(fs::exists(later));
  EXPECT_EQ(reaper.pending(), 0u);
}

}  // namespace
}  // namespace runnel::log
