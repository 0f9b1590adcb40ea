"""Property-based fuzzing of every API operation against a live server, on each database.

schemathesis reads the app's own OpenAPI document, generates requests (valid and invalid,
boundary values and unsupported methods among them) for every operation, and fails on any
5xx or any status, content type or body the document does not state. It is bounded so that
it fits the suite's time budget (about a minute for both databases): a few examples per
operation (``RUSHES_FUZZ_EXAMPLES``, 5) and a hard limit on each (``RUSHES_FUZZ_SECONDS``, 60).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.settings import Settings, StorageSettings
from service.app import create_app
from tests.conftest import DATABASES, free_port, fresh_database, wait_for_http
from tests.helpers import PASSWORD

EXAMPLES = int(os.environ.get("RUSHES_FUZZ_EXAMPLES", "5"))
# A hard limit on each operation (pytest-timeout), whatever the examples find.
TIME_LIMIT_SECONDS = int(os.environ.get("RUSHES_FUZZ_SECONDS", "60"))


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(request, request.param, tmp_path_factory.mktemp("fuzz-db")) as url:
        yield url


@pytest.fixture(scope="module")
def live_api(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rushes-server``'s app under uvicorn, as deployed (no embedded worker)."""
    data = tmp_path_factory.mktemp("fuzz-data")
    port = free_port()
    env = {
        **os.environ,
        "RUSHES_DATA_DIR": str(data),
        "RUSHES_DATABASE__URL": fuzz_database,
        "RUSHES_STORAGE__PATH": str(data / "storage"),
        "RUSHES_LOG__LEVEL": "warning",
    }
    log = (data / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        print((data / "server.log").read_text()[-20000:])


@pytest.fixture(scope="module")
def api_key(live_api: str) -> str:
    with httpx.Client(base_url=live_api) as client:
        email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
        signed_up = client.post(
            "/v1/auth/signup", json={"email": email, "password": PASSWORD, "tenant_name": "Fuzz"}
        )
        assert signed_up.status_code == 201, signed_up.text
        key = client.post("/v1/api-keys", json={"name": "fuzz"})
        assert key.status_code == 201, key.text
        return str(key.json()["key"])


def _document() -> dict[str, Any]:
    """The OpenAPI document the live server serves: the app's own, built without a database."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(data_dir=Path(folder), storage=StorageSettings(path=Path(folder))))
        return app.openapi_schema.to_schema()


# /schema/* are Litestar's own pages for reading the document, not operations of the API.
schema = schemathesis.openapi.from_dict(_document()).exclude(path_regex="^/schema")


@pytest.mark.timeout(TIME_LIMIT_SECONDS)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_error_and_answers_match_the_document(
    case: schemathesis.Case, live_api: str, api_key: str
) -> None:
    case.call_and_validate(
        base_url=live_api,
        headers={"Authorization": f"Bearer {api_key}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )
