"""Several daemons on one PostgreSQL: instance liveness and sender ownership (membership)."""
