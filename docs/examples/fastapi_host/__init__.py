"""A FastAPI host application (see app.py)."""
