#include "client/produce_stream.h"

#include <utility>
#include <vector>

namespace runnel::client {

std::unique_ptr<ProduceStream> ProduceStream::Start(
    std::shared_ptr<grpc::Channel> channel, std::function<void()> on_done) {
  std::unique_ptr<ProduceStream> stream(
      new ProduceStream(std::move(channel), std::move(on_done)));
  stream->stub_.PrepareBidiStreamingCall(&stream->context_,
                                         "/runnel.v1.Broker/ProduceStream",
                                         grpc::StubOptions(), stream.get());
  // Held until no operation will be started from outside a reaction (Send
  // and CloseSend run on the producer's threads): without the hold the call
  // could end, and its state be freed, between such a start and the check
  // before it.
  stream->AddHold();
  stream->StartRead(&stream->response_);
  stream->StartCall();
  return stream;
}

bool ProduceStream::Send(uint64_t id, const grpc::ByteBuffer& request,
                         absl::Time deadline, Callback done) {
  {
    absl::MutexLock lock(&mu_);
    if (ending_) return false;
    queue_.push_back(request);  // shares the slices
    pending_[id] = Pending{std::move(done), deadline};
  }
  Pump();
  return true;
}

void ProduceStream::CloseSend() {
  {
    absl::MutexLock lock(&mu_);
    ending_ = true;
  }
  Pump();
}

bool ProduceStream::ExpireOverdue(absl::Time now) {
  {
    absl::MutexLock lock(&mu_);
    if (overdue_) return false;
    bool any = false;
    for (const auto& [id, p] : pending_) any = any || p.deadline <= now;
    if (!any) return false;
    overdue_ = ending_ = true;
  }
  context_.TryCancel();
  return true;
}

void ProduceStream::Pump() {
  bool write = false;
  bool writes_done = false;
  {
    absl::MutexLock lock(&mu_);
    if (write_in_flight_ || writes_done_) return;
    if (!queue_.empty()) {
      writing_ = std::move(queue_.front());
      queue_.pop_front();
      write_in_flight_ = write = true;
    } else if (ending_) {
      writes_done_ = writes_done = true;
    }
  }
  if (write) StartWrite(&writing_);
  if (writes_done) {
    StartWritesDone();
    RemoveHold();  // nothing else is started after the half-close
  }
}

void ProduceStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) {
      // The call is broken; OnDone fails what is in flight. Nothing else is
      // started on it.
      ending_ = writes_done_ = true;
      queue_.clear();
    }
  }
  if (!ok) return RemoveHold();
  Pump();
}

void ProduceStream::OnReadDone(bool ok) {
  if (!ok) {
    // The call ended (the broker finished or failed it, or it was
    // cancelled): write nothing more, half-close and drop the hold, so that
    // OnDone comes and fails what is in flight.
    {
      absl::MutexLock lock(&mu_);
      ending_ = true;
      queue_.clear();
    }
    return Pump();
  }
  Callback done;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(response_.correlation_id());
    if (it != pending_.end()) {
      done = std::move(it->second.done);
      pending_.erase(it);
    }
  }
  if (done) done(grpc::Status::OK, response_.mutable_response());
  StartRead(&response_);
}

void ProduceStream::OnDone(const grpc::Status& status) {
  std::vector<Callback> failed;
  grpc::Status reported = status;
  {
    absl::MutexLock lock(&mu_);
    ending_ = true;  // writes_done_ too: the hold is gone
    for (auto& [id, p] : pending_) failed.push_back(std::move(p.done));
    pending_.clear();
    if (overdue_) {
      reported = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              "produce request timed out; stream cancelled");
    } else if (status.ok()) {
      reported = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the broker ended the produce stream before "
                              "answering");
    }
  }
  for (Callback& done : failed) done(reported, nullptr);
  // The owner may destroy this object as soon as ended_ is set: nothing
  // after the store touches it.
  std::function<void()> on_done = on_done_;
  ended_.store(true, std::memory_order_release);
  on_done();
}

}  // namespace runnel::client
