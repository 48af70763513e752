#pragma once

// Output helpers shared by the `runnel` subcommands: how keys, values and
// other byte strings are shown, and a small writer for one-line JSON objects.
//
// Byte strings: printable ASCII (every byte in 0x20..0x7e) is shown as text,
// anything else as lowercase hex; null (absent) is distinct from empty.
//   text:  null | "text with \" and \\ escaped" | 0x00ff
//   JSON:  null | "json-escaped text"           | {"hex":"00ff"}

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace runnel::tools {

// Every byte in 0x20..0x7e (true for the empty string).
bool IsPrintableAscii(std::string_view bytes);
// Lowercase hex, two digits per byte, no prefix.
std::string HexString(std::string_view bytes);

// The text form above.
std::string FormatBytesText(std::optional<std::string_view> bytes);

// `text` as a quoted JSON string (RFC 8259 escapes; bytes >= 0x80 are passed
// through, so give it UTF-8 or ASCII).
std::string JsonQuote(std::string_view text);
// The JSON form of a byte string above.
std::string JsonBytes(std::optional<std::string_view> bytes);

// Builds one JSON object: JsonObject().Int("a", 1).String("b", "x").Build()
// gives {"a":1,"b":"x"}. Field names are not checked for duplicates.
// Thread-compatible.
class JsonObject {
 public:
  JsonObject() = default;
  JsonObject(const JsonObject&) = default;
  JsonObject& operator=(const JsonObject&) = default;

  JsonObject& Int(std::string_view name, int64_t value);
  JsonObject& Uint(std::string_view name, uint64_t value);
  JsonObject& Double(std::string_view name, double value);
  JsonObject& Bool(std::string_view name, bool value);
  JsonObject& String(std::string_view name, std::string_view value);
  JsonObject& Null(std::string_view name);
  JsonObject& Bytes(std::string_view name,
                    std::optional<std::string_view> value);
  // `json` must already be valid JSON (an object, an array, ...).
  JsonObject& Raw(std::string_view name, std::string_view json);

  std::string Build() const { return body_ + "}"; }

 private:
  void Name(std::string_view name);
  std::string body_ = "{";
};

}  // namespace runnel::tools
