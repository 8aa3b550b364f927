"""Benchmarks behind ``secmon bench``: each measures secmon beside a peer in the same run."""
