#include "proto/slice_writer.h"

#include <utility>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace runnel::wire {

using google::protobuf::internal::WireFormatLite;

size_t VarintSize(uint64_t value) {
  return google::protobuf::io::CodedOutputStream::VarintSize64(value);
}

size_t LengthDelimitedSize(int field, size_t length) {
  const uint32_t tag =
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  return VarintSize(tag) + VarintSize(length) + length;
}

void SliceWriter::Varint(uint64_t value) {
  uint8_t buf[10];
  uint8_t* end =
      google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(value, buf);
  pending_.append(reinterpret_cast<const char*>(buf), end - buf);
}

void SliceWriter::Tag(int field, int wire_type) {
  Varint(WireFormatLite::MakeTag(
      field, static_cast<WireFormatLite::WireType>(wire_type)));
}

void SliceWriter::LengthDelimitedTag(int field) {
  Tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}

void SliceWriter::Owned(std::string payload) {
  Flush();
  auto* owned = new std::string(std::move(payload));
  slices_.emplace_back(
      owned->data(), owned->size(),
      [](void* p) { delete static_cast<std::string*>(p); }, owned);
}

void SliceWriter::Shared(std::shared_ptr<const std::string> payload) {
  Flush();
  const std::string& bytes = *payload;
  auto* keep = new std::shared_ptr<const std::string>(std::move(payload));
  slices_.emplace_back(
      const_cast<char*>(bytes.data()), bytes.size(),
      [](void* p) {
        delete static_cast<std::shared_ptr<const std::string>*>(p);
      },
      keep);
}

void SliceWriter::Append(const grpc::ByteBuffer& buffer) {
  Flush();
  std::vector<grpc::Slice> slices;
  // Dump only fails on an uninitialized buffer, which has no slices.
  if (buffer.Dump(&slices).ok()) {
    for (grpc::Slice& s : slices) slices_.push_back(std::move(s));
  }
}

grpc::ByteBuffer SliceWriter::Finish() {
  Flush();
  return grpc::ByteBuffer(slices_.data(), slices_.size());
}

void SliceWriter::Flush() {
  if (pending_.empty()) return;
  slices_.emplace_back(pending_);
  pending_.clear();
}

}  // namespace runnel::wire
