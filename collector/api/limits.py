"""The request body limit, enforced on the stream: bytes are counted as they arrive, whatever the headers say.

A Content-Length over the limit is refused before the body is read (collector/api/app.py); a chunked body
carries no length, so this ASGI middleware counts the bytes each `http.request` message brings and stops
the request at the first byte past the limit with 413, having held at most one chunk more in memory.
It raises FastAPI's HTTPException from inside `receive`: FastAPI passes an HTTPException raised while
reading the body through unchanged (any other exception there would become a 400), and Starlette's
exception middleware turns it into the response.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)
