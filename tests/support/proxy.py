"""A TCP proxy in front of Elasticsearch that can lose the answers to bulk requests.

It stands for a network that fails after the server did the work: Elasticsearch stores the
batch, but the client never hears so and must retry.
"""

from __future__ import annotations

import asyncio
import contextlib


class AnswerLosingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; drops the answers of the next ``lose`` bulk requests."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.lose = 0
        self.lost = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> AnswerLosingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        lose_next_answer = asyncio.Event()

        async def requests() -> None:
            while data := await client_reader.read(65536):
                if b"/_bulk" in data and self.lose > 0:
                    self.lose -= 1
                    lose_next_answer.set()
                server_writer.write(data)
                await server_writer.drain()
            server_writer.close()

        async def answers() -> None:
            while data := await server_reader.read(65536):
                if lose_next_answer.is_set():
                    # Elasticsearch has answered, so it has done the work: cut the line.
                    self.lost += 1
                    break
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()
            server_writer.close()

        tasks = [asyncio.create_task(requests()), asyncio.create_task(answers())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        for writer in (client_writer, server_writer):
            writer.close()
