"""Collectors: reach nodes over SSH and parse what vendor tools print (no Qt, no SQLite)."""
