"""Sigma engines built from their sources (Zircolite, Chainsaw, Hayabusa), run beside ``secmon detect``."""
