"""secmon: a security monitoring service — collectors, Sigma detection and alerts over Elasticsearch."""

__version__ = "0.1.0"

__all__ = ["__version__"]
