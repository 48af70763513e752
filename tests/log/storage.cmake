# tests for the storage part of log/
