#include "tools/client_cli.h"

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace runnel::tools {
namespace {

// 2026-12-03T17:00:00Z.
constexpr int64_t kFivePm = 1796317200000;
// 2026-12-03T00:00:00Z.
constexpr int64_t kMidnight = 1796256000000;

int64_t ParsedOrMinusOne(const std::string& text) {
  absl::StatusOr<int64_t> ms = ParseTimeMs(text);
  EXPECT_TRUE(ms.ok()) << text << ": " << ms.status();
  return ms.ok() ? *ms : -1;
}

TEST(ParseTimeMsTest, EpochDigitsAreMilliseconds) {
  EXPECT_EQ(ParsedOrMinusOne("0"), 0);
  EXPECT_EQ(ParsedOrMinusOne("1796317200000"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("1796317200123"), kFivePm + 123);
}

TEST(ParseTimeMsTest, IsoWithZIsUtc) {
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T17:00:00Z"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T17:00:00.250Z"), kFivePm + 250);
}

TEST(ParseTimeMsTest, IsoOffsetsAreSubtracted) {
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T19:00:00+02:00"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T12:30:00-04:30"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T17:00:00.250+01:00"),
            kFivePm - 3600 * 1000 + 250);
}

TEST(ParseTimeMsTest, WithoutAZoneIsUtc) {
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03T17:00:00"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03 17:00:00"), kFivePm);
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03 17:00:00.5"), kFivePm + 500);
}

TEST(ParseTimeMsTest, DateAloneIsMidnightUtc) {
  EXPECT_EQ(ParsedOrMinusOne("2026-12-03"), kMidnight);
}

TEST(ParseTimeMsTest, GarbageIsInvalidArgument) {
  for (const char* text :
       {"", "yesterday", "12abc", "-5", "99999999999999999999", "2026-13-01",
        "2026-12-03T25:00:00Z", "2026-12-03T17:00:00+25:00", "2026-12-03x",
        "17:00:00"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<int64_t> ms = ParseTimeMs(text);
    EXPECT_THAT(ms.status(),
                runnel::testing::StatusIs(absl::StatusCode::kInvalidArgument));
    if (!ms.ok()) {
      EXPECT_THAT(ms.status().message(), ::testing::HasSubstr(text));
    }
  }
}

}  // namespace
}  // namespace runnel::tools
