# tests for the storage part of log/
runnel_add_test(storage_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/offset_index_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/time_index_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/leader_epoch_cache_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/segment_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/partition_log_test.cc
  LIBS runnel_log)
runnel_add_test(file_reaper_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/file_reaper_test.cc
  LIBS runnel_log)
runnel_add_test(compaction_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/compaction_test.cc
  LIBS runnel_log)
