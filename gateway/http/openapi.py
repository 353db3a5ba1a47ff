"""The OpenAPI 3.1 document of the HTTP API (spec/http-api.md), served at /openapi.json."""
from __future__ import annotations

from aiohttp import web

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {"title": "PBB-P2 / BPHTB payment gateway", "version": "1"},
    "paths": {},
}


def openapi_route() -> web.RouteDef:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(DOCUMENT)

    return web.get("/openapi.json", handler)
