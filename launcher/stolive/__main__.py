"""``python -m stolive up``: the same as the ``stolive`` command."""

from stolive.cli import main

main()
