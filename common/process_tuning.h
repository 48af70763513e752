#pragma once

// Process-wide settings for the long-running, high-throughput binaries
// (runnel-broker, the runnel CLI). Libraries never call this: it changes
// global allocator and mutex behaviour. Measurements: docs/benchmarks.md
// ("Produce path, session 3").

namespace runnel {

// Call once at the start of main, before any thread starts.
//  - malloc: a fixed mmap threshold of 32 MiB and a trim threshold of
//    512 MiB. With glibc's defaults the 1 MiB buffers of the produce path
//    (gRPC read slices, record strings) are handed back to the kernel and
//    page-faulted in again on every request; with these they are reused
//    from the heap. The heap then keeps up to its peak size.
//  - absl::Mutex deadlock detection off. Debian's Abseil is built without
//    NDEBUG, so every Lock/Unlock walks a global lock graph; upstream
//    release builds have it off too. In-process tests keep it on.
void TuneProcessForThroughput();

}  // namespace runnel
