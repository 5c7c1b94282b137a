"""A Flask host application (see app.py)."""
