"""``python -m connectors_core`` runs the ``connectors`` command."""

from connectors_core.cli import main

if __name__ == "__main__":
    main()
