#include "broker/produce_request_reader.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace runnel::broker {
namespace {

// Field numbers and wire types of the messages read here
// (proto/broker_service.proto).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kStreamCorrelationId = 1;  // ProduceStreamRequest
constexpr uint32_t kStreamRequest = 2;
constexpr uint32_t kRequestAcks = 1;  // ProduceRequest
constexpr uint32_t kRequestTimeoutMs = 2;
constexpr uint32_t kRequestTopics = 3;
constexpr uint32_t kTopicName = 1;  // TopicProduceData
constexpr uint32_t kTopicPartitions = 2;
constexpr uint32_t kPartitionIndex = 1;  // PartitionProduceData
constexpr uint32_t kPartitionRecords = 100;

// A read cursor over the pieces of one message. Every read returns false
// when the bytes end (or the encoding is one the reader leaves to protobuf).
class Cursor {
 public:
  explicit Cursor(std::vector<std::string_view> pieces)
      : pieces_(std::move(pieces)) {
    for (std::string_view p : pieces_) size_ += p.size();
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }

  // A varint of at most 10 bytes whose value fits 64 bits.
  bool Varint(uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      char c;
      if (!Byte(c)) return false;
      const uint64_t b = static_cast<uint8_t>(c);
      if (shift == 63 && b > 1) return false;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) return true;
    }
    return false;
  }

  // A length prefix whose bytes end by `end`; sets `field_end`.
  bool Length(size_t end, size_t& field_end) {
    uint64_t length;
    if (!Varint(length) || pos_ > end || length > end - pos_) return false;
    field_end = pos_ + static_cast<size_t>(length);
    return true;
  }

  // Views of the bytes up to `end`, split where the pieces are.
  void Pieces(size_t end, std::vector<std::string_view>& out) {
    while (pos_ < end) {
      const std::string_view here = pieces_[index_].substr(offset_);
      const size_t take = std::min(here.size(), end - pos_);
      if (take > 0) out.push_back(here.substr(0, take));
      Advance(take);
    }
  }

  void String(size_t end, std::string& out) {
    std::vector<std::string_view> views;
    Pieces(end, views);
    out.clear();
    for (std::string_view v : views) out.append(v);
  }

 private:
  bool Byte(char& c) {
    if (pos_ == size_) return false;
    while (offset_ == pieces_[index_].size()) {
      ++index_;
      offset_ = 0;
    }
    c = pieces_[index_][offset_];
    Advance(1);
    return true;
  }
  void Advance(size_t n) {
    pos_ += n;
    offset_ += n;
    while (index_ < pieces_.size() && offset_ == pieces_[index_].size() &&
           index_ + 1 < pieces_.size()) {
      ++index_;
      offset_ = 0;
    }
  }

  std::vector<std::string_view> pieces_;
  size_t size_ = 0;
  size_t pos_ = 0;
  size_t index_ = 0;
  size_t offset_ = 0;
};

// Reads one field's tag; false at a tag protobuf would refuse or the reader
// leaves to it (a truncated varint, more than 32 bits, field number 0). The
// callers leave unknown fields and other wire types to protobuf too.
bool Tag(Cursor& c, uint32_t& field, uint32_t& wire_type) {
  uint64_t tag;
  if (!c.Varint(tag) || tag > UINT32_MAX) return false;
  field = static_cast<uint32_t>(tag >> 3);
  wire_type = static_cast<uint32_t>(tag & 7);
  return field != 0;
}

struct Reader {
  Cursor& c;
  std::vector<std::vector<std::string_view>>& records;

  bool Partition(size_t end, v1::PartitionProduceData& p) {
    const size_t index = records.size();
    records.emplace_back();
    while (c.pos() < end) {
      uint32_t field, type;
      if (!Tag(c, field, type)) return false;
      if (field == kPartitionIndex && type == kVarint) {
        uint64_t v;
        if (!c.Varint(v)) return false;
        p.set_partition(static_cast<int32_t>(v));
      } else if (field == kPartitionRecords && type == kLengthDelimited) {
        size_t field_end;
        if (!c.Length(end, field_end)) return false;
        records[index].clear();  // the last occurrence wins
        c.Pieces(field_end, records[index]);
      } else {
        return false;
      }
    }
    return c.pos() == end;
  }

  bool Topic(size_t end, v1::TopicProduceData& t) {
    while (c.pos() < end) {
      uint32_t field, type;
      if (!Tag(c, field, type)) return false;
      size_t field_end;
      if (type != kLengthDelimited || !c.Length(end, field_end)) return false;
      if (field == kTopicName) {
        c.String(field_end, *t.mutable_name());
        // proto3 strings must be UTF-8: protobuf checks anything non-ASCII.
        if (std::any_of(t.name().begin(), t.name().end(),
                        [](char ch) { return (ch & 0x80) != 0; })) {
          return false;
        }
      } else if (field == kTopicPartitions) {
        if (!Partition(field_end, *t.add_partitions())) return false;
      } else {
        return false;
      }
    }
    return c.pos() == end;
  }

  bool Request(size_t end, v1::ProduceRequest& r) {
    while (c.pos() < end) {
      uint32_t field, type;
      if (!Tag(c, field, type)) return false;
      if ((field == kRequestAcks || field == kRequestTimeoutMs) &&
          type == kVarint) {
        uint64_t v;
        if (!c.Varint(v)) return false;
        if (field == kRequestAcks) {
          r.set_acks(static_cast<v1::Acks>(static_cast<int32_t>(v)));
        } else {
          r.set_timeout_ms(static_cast<int32_t>(v));
        }
      } else if (field == kRequestTopics && type == kLengthDelimited) {
        size_t field_end;
        if (!c.Length(end, field_end) || !Topic(field_end, *r.add_topics())) {
          return false;
        }
      } else {
        return false;
      }
    }
    return c.pos() == end;
  }

  bool Stream(v1::ProduceStreamRequest& m) {
    const size_t end = c.size();
    while (c.pos() < end) {
      uint32_t field, type;
      if (!Tag(c, field, type)) return false;
      if (field == kStreamCorrelationId && type == kVarint) {
        uint64_t v;
        if (!c.Varint(v)) return false;
        m.set_correlation_id(v);
      } else if (field == kStreamRequest && type == kLengthDelimited) {
        // A repeated message field merges into the one before.
        size_t field_end;
        if (!c.Length(end, field_end) ||
            !Request(field_end, *m.mutable_request())) {
          return false;
        }
      } else {
        return false;
      }
    }
    return true;
  }
};

// protobuf's parse of the joined bytes, the records moved out.
absl::StatusOr<ReadProduceStreamRequest> ParseJoined(
    const std::vector<grpc::Slice>& slices) {
  std::string joined;
  for (const grpc::Slice& s : slices) {
    joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  ReadProduceStreamRequest read;
  if (!read.message.ParseFromString(joined)) {
    return absl::InvalidArgumentError("malformed ProduceStreamRequest");
  }
  if (!read.message.has_request()) return read;
  for (v1::TopicProduceData& t :
       *read.message.mutable_request()->mutable_topics()) {
    for (v1::PartitionProduceData& p : *t.mutable_partitions()) {
      read.records.emplace_back(std::move(*p.mutable_records()));
      p.clear_records();
    }
  }
  return read;
}

}  // namespace

absl::StatusOr<ReadProduceStreamRequest> ReadProduceStream(
    const grpc::ByteBuffer& bytes) {
  auto slices = std::make_shared<std::vector<grpc::Slice>>();
  if (!bytes.Dump(slices.get()).ok()) {
    return absl::InvalidArgumentError("unreadable ProduceStreamRequest");
  }
  std::vector<std::string_view> pieces;
  pieces.reserve(slices->size());
  for (const grpc::Slice& s : *slices) {
    pieces.emplace_back(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  Cursor cursor(std::move(pieces));
  std::vector<std::vector<std::string_view>> records;
  ReadProduceStreamRequest read;
  if (!Reader{cursor, records}.Stream(read.message)) {
    return ParseJoined(*slices);
  }
  read.records.reserve(records.size());
  for (std::vector<std::string_view>& r : records) {
    read.records.emplace_back(std::move(r), slices);
  }
  return read;
}

}  // namespace runnel::broker
