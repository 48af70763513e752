# LogManager sources are added to runnel_log here.
target_sources(runnel_log PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint_file.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/log_manager.cc
)
# log_manager.h exposes flat_hash_map and Mutex members.
target_link_libraries(runnel_log PUBLIC absl::flat_hash_map absl::synchronization)
