"""RFC 9457 problem details for every non-business answer (spec/http-api.md "Conventions")."""
from __future__ import annotations

import json

from aiohttp import web

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Content", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}


class Problem(Exception):
    """Raised anywhere in a handler; the middleware renders it."""

    def __init__(self, status: int, detail: str, response_code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.response_code = response_code
        self.headers = headers or {}


def problem_response(status: int, detail: str, response_code: str | None = None,
                     headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": f"https://gateway.bapenda/problems/{status}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail}
    if response_code is not None:
        body["response_code"] = response_code
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/problem+json",
                        headers=headers)
