"""Small internals usable from every layer."""
