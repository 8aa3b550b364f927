"""Collectors: sources that receive logs and packets, and the transforms that normalize them to ECS."""
