"""The ``connectors`` command line (requires click, imported only here)."""

from ._main import cli, main

__all__ = ["cli", "main"]
