"""The REST API: app factory, dependencies, schemas, routes."""
