"""``python -m worker`` runs the ``winback`` command."""

from worker.cli import main

main()
