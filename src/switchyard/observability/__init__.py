"""Structured logs with redaction, and Prometheus metrics."""
