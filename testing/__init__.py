"""Helpers that start real services for tests and benchmarks (not shipped with the app)."""
