# tests for the manager part of log/
