#pragma once

// RUNNEL_CHECK(cond) aborts the process with the condition, file and line
// when `cond` is false: a broken invariant is a bug, not an error.
// RUNNEL_DCHECK is the same in debug builds and compiles away under NDEBUG.

namespace runnel::internal {
[[noreturn]] void CheckFailed(const char* condition, const char* file, int line,
                              const char* message);
}  // namespace runnel::internal

#define RUNNEL_CHECK(cond)                                                 \
  do {                                                                     \
    if (__builtin_expect(!(cond), 0)) {                                    \
      ::runnel::internal::CheckFailed(#cond, __FILE__, __LINE__, nullptr); \
    }                                                                      \
  } while (0)

#define RUNNEL_CHECK_MSG(cond, msg)                                      \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                  \
      ::runnel::internal::CheckFailed(#cond, __FILE__, __LINE__, (msg)); \
    }                                                                    \
  } while (0)

#ifdef NDEBUG
#define RUNNEL_DCHECK(cond) \
  do {                      \
    (void)sizeof(cond);     \
  } while (0)
#else
#define RUNNEL_DCHECK(cond) RUNNEL_CHECK(cond)
#endif
