"""Comparisons of secmon with other tools, run from the source tree; not part of the installed package.

They use secmon only through its public interfaces (the command line, public modules), so they
measure what a user gets. See README.md here.
"""
