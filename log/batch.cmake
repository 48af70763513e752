add_library(runnel_log_batch
  ${CMAKE_CURRENT_SOURCE_DIR}/compression.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/record_batch.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/record_bytes.cc
)
runnel_target_defaults(runnel_log_batch)
target_link_libraries(runnel_log_batch PUBLIC runnel_common
  PRIVATE PkgConfig::ZSTD PkgConfig::LZ4 PkgConfig::ZLIB ${SNAPPY_LIBRARY})
