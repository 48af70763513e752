#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace runnel::broker {

// A partition's name: topic and index.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;

  bool operator==(const TopicPartition&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
  std::string ToString() const { return absl::StrCat(topic, "-", partition); }
};

}  // namespace runnel::broker
