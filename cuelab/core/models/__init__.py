"""Model adapters behind a lazy registry (see registry.py)."""
