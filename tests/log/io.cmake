# tests for the io part of log/
runnel_add_test(io_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/io_thread_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/append_writer_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/huge_page_buffers_test.cc
  LIBS runnel_log_io)
