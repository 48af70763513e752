add_library(runnel_log
  ${CMAKE_CURRENT_SOURCE_DIR}/mapped_region.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/offset_index.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/time_index.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/leader_epoch_cache.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/segment.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/partition_log.cc
)
runnel_target_defaults(runnel_log)
target_link_libraries(runnel_log PUBLIC runnel_log_batch runnel_log_io runnel_common
  absl::synchronization absl::status absl::statusor absl::strings absl::str_format)
