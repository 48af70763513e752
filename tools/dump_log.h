#pragma once

// `runnel dump-log`: prints and verifies segment files offline, straight from
// the files (no broker). Documented in docs/cli.md.

#include <ostream>
#include <string>
#include <vector>

namespace runnel::tools {

struct DumpLogOptions {
  bool records = false;  // --records: also print every record
  bool verify = false;   // --verify: full checks, stop at the first problem
  bool json = false;     // --json: one JSON object per line
};

// Exit codes of DumpLog.
inline constexpr int kDumpLogOk = 0;
// A problem in the data: a torn or corrupt batch, a bad CRC, and with
// `verify` also failed validation, an offset gap, a misnamed segment or a
// bad index entry.
inline constexpr int kDumpLogProblem = 1;
// A path could not be read at all (missing, not a file or directory, I/O).
inline constexpr int kDumpLogUnreadable = 2;

// Dumps every path in order. A path is a segment .log file or a partition
// directory (then each *.log in it, in base-offset order, with the offset
// checks running across its segments). The listing goes to `out`; problems go
// to `err` as "PATH: position N: what". Without `verify` the dump goes on
// after a problem (with the next batch if the bad one could be framed, else
// with the next file); with `verify` it stops at the first one. Returns the
// exit code: the highest of the codes above that applied.
// Thread-compatible (touches only its arguments and the files).
int DumpLog(const std::vector<std::string>& paths,
            const DumpLogOptions& options, std::ostream& out,
            std::ostream& err);

}  // namespace runnel::tools
