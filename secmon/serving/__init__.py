"""What secmon's two HTTP applications (ingest and the API) share: the server, and problem details."""

from secmon.serving.server import AsgiServer, freeze_startup_heap

__all__ = ["AsgiServer", "freeze_startup_heap"]
