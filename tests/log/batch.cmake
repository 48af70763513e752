# tests for the batch part of log/
runnel_add_test(record_batch_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/record_batch_test.cc
  LIBS runnel_log_batch ${SNAPPY_LIBRARY})
runnel_add_test(compression_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/compression_test.cc
  LIBS runnel_log_batch PkgConfig::ZSTD PkgConfig::LZ4 PkgConfig::ZLIB
       ${SNAPPY_LIBRARY})
runnel_add_test(record_pieces_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/record_pieces_test.cc
  LIBS runnel_log_batch)
runnel_add_test(filter_batch_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/filter_batch_test.cc
  LIBS runnel_log_batch)
