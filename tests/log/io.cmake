# tests for the io part of log/
