#pragma once

// Debian's Abseil has no status matchers; these cover what the tests need.
//   EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss));
//   EXPECT_THAT(status_or, IsOk());

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace runnel::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P(StatusIs, code,
          std::string("has status code ") +
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& status = ::runnel::testing::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = ::runnel::testing::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.ok();
}

}  // namespace runnel::testing

#define RUNNEL_ASSERT_OK(expr) ASSERT_THAT((expr), ::runnel::testing::IsOk())
#define RUNNEL_EXPECT_OK(expr) EXPECT_THAT((expr), ::runnel::testing::IsOk())
