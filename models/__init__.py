"""Reference models for hwgen (see models/README.md)."""
