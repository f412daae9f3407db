"""Campaign planning without I/O: audience filters, input checks, per-message rendering."""
