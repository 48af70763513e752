#include "broker/http_server.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

#include "broker/broker_core.h"
#include "tests/testing/scoped_temp_dir.h"
#include "tests/testing/status_matchers.h"

namespace runnel::broker {
namespace {

using ::runnel::testing::IsOk;

// A stop right after the start (a SIGTERM as soon as the broker is ready)
// used to leave httplib's listener in accept() for good: Stop never returned
// and the broker never exited.
TEST(HttpServerTest, StopRightAfterStartReturns) {
  runnel::testing::ScopedTempDir dir;
  BrokerCoreOptions options;
  options.data_dir = dir.Sub("data");
  options.start_background_threads = false;
  auto core = BrokerCore::Open(std::move(options));
  ASSERT_THAT(core, IsOk());
  constexpr int kRounds = 200;
  int stopped = 0;
  absl::Notification done;
  std::thread rounds([&] {
    for (int i = 0; i < kRounds; ++i) {
      auto http = HttpServer::Start(core->get(), "127.0.0.1:0");
      if (!http.ok()) break;
      (*http)->Stop();
      ++stopped;
    }
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    // The thread cannot be joined: report and end the process.
    std::fprintf(stderr, "HttpServer::Stop hung after %d rounds\n", stopped);
    std::abort();
  }
  rounds.join();
  EXPECT_EQ(stopped, kRounds);
  RUNNEL_EXPECT_OK((*core)->Close());
}

}  // namespace
}  // namespace runnel::broker
