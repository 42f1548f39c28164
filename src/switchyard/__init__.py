"""Switchyard: failover control plane for multi-region RAG dialog services."""
