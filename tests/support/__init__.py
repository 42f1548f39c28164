"""Helpers shared by several test folders' conftest files."""
