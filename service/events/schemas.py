from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from service.schemas import Output


class EventOut(Output):
    id: UUID
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime
