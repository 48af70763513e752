add_library(runnel_log_io
  ${CMAKE_CURRENT_SOURCE_DIR}/fixed_buffers.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/huge_page_buffers.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/io_ring.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/io_thread.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/append_writer.cc
)
runnel_target_defaults(runnel_log_io)
target_link_libraries(runnel_log_io PUBLIC runnel_common PkgConfig::URING Threads::Threads
  absl::flat_hash_map absl::synchronization absl::status absl::statusor absl::strings absl::time
  spdlog::spdlog)
