"""``python -m secmon`` is the ``secmon`` command."""

from secmon.cli import main

main()
