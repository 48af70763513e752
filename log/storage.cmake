add_library(runnel_log
  ${CMAKE_CURRENT_SOURCE_DIR}/segment.cc
)
runnel_target_defaults(runnel_log)
target_link_libraries(runnel_log PUBLIC runnel_log_batch runnel_log_io runnel_common)
