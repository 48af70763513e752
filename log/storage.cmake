add_library(runnel_log
  ${CMAKE_CURRENT_SOURCE_DIR}/mapped_region.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/offset_index.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/time_index.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/leader_epoch_cache.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/segment.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/partition_log.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/file_reaper.cc
)
runnel_target_defaults(runnel_log)
target_link_libraries(runnel_log PUBLIC runnel_log_batch runnel_log_io runnel_common
  absl::synchronization absl::status absl::statusor absl::strings absl::str_format
  spdlog::spdlog)
# Segment::Read fills its result with std::string::resize_and_overwrite
# (C++23), so fetch buffers are not zeroed before pread overwrites them
# (the memset was 12 % of the broker's CPU when consuming). libstdc++ keeps
# std::string's layout the same in every -std mode.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/segment.cc
  PROPERTIES COMPILE_OPTIONS "-std=c++2b")
