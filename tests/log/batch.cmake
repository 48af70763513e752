# tests for the batch part of log/
