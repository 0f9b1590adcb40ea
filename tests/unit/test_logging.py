from __future__ import annotations

import json
import logging

from core.logs import JsonFormatter
from core.logs import request_id_var as _request_id


def _format(message: str) -> dict[str, object]:
    record = logging.LogRecord("rushes.x", logging.ERROR, __file__, 1, message, None, None)
    return dict(json.loads(JsonFormatter().format(record)))


def test_log_lines_are_json_and_name_the_request() -> None:
    token = _request_id.set("req-99999999")
    try:
        inside = _format("boom")
    finally:
        _request_id.reset(token)
    assert inside == {
        "time": inside["time"],
        "level": "error",
        "logger": "rushes.x",
        "message": "boom",
        "request_id": "req-99999999",
    }
    outside = _format("idle")
    assert "request_id" not in outside and outside["message"] == "idle"
