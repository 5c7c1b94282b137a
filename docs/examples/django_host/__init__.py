"""A Django host project (see asgi.py)."""
