"""What the channels hand their message-log rows to (the store's batched writer implements it)."""
from __future__ import annotations

from typing import Any, Protocol

from gateway.domain.log_row import LogRow


class MessageSink(Protocol):
    dropped: int

    def add(self, row: LogRow) -> None: ...

    def status(self) -> dict[str, Any]: ...
