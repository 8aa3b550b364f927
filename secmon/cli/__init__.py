"""The ``secmon`` command line."""

from secmon.cli.app import app, main

__all__ = ["app", "main"]
