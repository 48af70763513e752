#include "tools/output_format.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace runnel::tools {

bool IsPrintableAscii(std::string_view bytes) {
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

std::string HexString(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(kDigits[u >> 4]);
    out.push_back(kDigits[u & 0x0f]);
  }
  return out;
}

std::string FormatBytesText(std::optional<std::string_view> bytes) {
  if (!bytes.has_value()) return "null";
  if (!IsPrintableAscii(*bytes)) return "0x" + HexString(*bytes);
  std::string out = "\"";
  for (char c : *bytes) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string JsonBytes(std::optional<std::string_view> bytes) {
  if (!bytes.has_value()) return "null";
  if (IsPrintableAscii(*bytes)) return JsonQuote(*bytes);
  return absl::StrCat("{\"hex\":\"", HexString(*bytes), "\"}");
}

void JsonObject::Name(std::string_view name) {
  if (body_.size() > 1) body_.push_back(',');
  body_ += JsonQuote(name);
  body_.push_back(':');
}

JsonObject& JsonObject::Int(std::string_view name, int64_t value) {
  Name(name);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Uint(std::string_view name, uint64_t value) {
  Name(name);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Double(std::string_view name, double value) {
  Name(name);
  // JSON has no NaN or infinity.
  if (!std::isfinite(value)) {
    body_ += "null";
  } else {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.15g", value);
    body_ += buf;
  }
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view name, bool value) {
  Name(name);
  body_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::String(std::string_view name, std::string_view value) {
  Name(name);
  body_ += JsonQuote(value);
  return *this;
}

JsonObject& JsonObject::Null(std::string_view name) {
  Name(name);
  body_ += "null";
  return *this;
}

JsonObject& JsonObject::Bytes(std::string_view name,
                              std::optional<std::string_view> value) {
  Name(name);
  body_ += JsonBytes(value);
  return *this;
}

JsonObject& JsonObject::Raw(std::string_view name, std::string_view json) {
  Name(name);
  body_ += json;
  return *this;
}

}  // namespace runnel::tools
