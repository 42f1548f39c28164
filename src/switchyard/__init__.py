"""Switchyard: failover control plane for multi-region RAG dialog services."""

__version__ = "0.1.0"
