"""A Starlette host application (see app.py)."""
