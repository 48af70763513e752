#pragma once

// Status propagation helpers. Debian's Abseil 20220623 ships no status
// macros, so Runnel defines its own.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RUNNEL_STATUS_CONCAT_INNER_(a, b) a##b
#define RUNNEL_STATUS_CONCAT_(a, b) RUNNEL_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) once and returns it if not OK.
#define RUNNEL_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status runnel_status_ = (expr);          \
    if (!runnel_status_.ok()) return runnel_status_; \
  } while (0)

// `RUNNEL_ASSIGN_OR_RETURN(auto x, MakeX());` evaluates the StatusOr once,
// returns its status if not OK, else moves the value into the declaration.
#define RUNNEL_ASSIGN_OR_RETURN(lhs, expr) \
  RUNNEL_ASSIGN_OR_RETURN_IMPL_(           \
      RUNNEL_STATUS_CONCAT_(runnel_statusor_, __LINE__), lhs, expr)

#define RUNNEL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
