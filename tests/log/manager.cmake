# tests for the manager part of log/
runnel_add_test(log_manager_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/log_manager_test.cc
  LIBS runnel_log)

# The crash test spawns log_crash_child, which appends until it is SIGKILLed.
add_executable(log_crash_child ${CMAKE_CURRENT_SOURCE_DIR}/crash_child.cc)
runnel_target_defaults(log_crash_child)
target_link_libraries(log_crash_child PRIVATE runnel_log)
runnel_add_test(log_crash_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/crash_test.cc
  LIBS runnel_log)
target_compile_definitions(log_crash_test PRIVATE
  RUNNEL_CRASH_CHILD="$<TARGET_FILE:log_crash_child>")
add_dependencies(log_crash_test log_crash_child)
