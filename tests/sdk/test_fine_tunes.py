"""``client.fine_tunes``, ``client.models`` and ``client.bases`` against the live server (no worker
runs: jobs stay queued until a test cancels them), and the ``train`` / ``models`` commands."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import rushes
from rushes import AdapterDigestError, types
from rushes._events import SSEParser
from rushes.cli import main
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import TenantKeys, storage_from_settings
from service.db.engine import create_engine
from service.db.tenancy import mark_unscoped
from service.jobs.models import FineTuneJob
from service.models.service import add_version
from tests.helpers import TINY_HYPERPARAMETERS
from tests.media_samples import make_clip
from tests.sdk.conftest import LiveServer
from tests.sdk.faults import Faults, FaultTransport, StreamCutter


@pytest.fixture
def dataset(client: rushes.Client, tmp_path: Path) -> tuple[str, int]:
    """A trainable dataset version: (dataset id, version number)."""
    asset = client.assets.upload(make_clip(tmp_path / "rain.mp4"), rights="owned", progress=False)
    created = client.datasets.create(name=f"Rain {uuid.uuid4().hex[:6]}")
    version = client.datasets.versions.create(
        created.id, items=[{"asset_id": asset.id, "caption": "rain on glass"}], trigger_word="sks"
    )
    return created.id, version.number


def _create(client: rushes.Client, dataset: tuple[str, int], **extra: Any) -> types.FineTune:
    return client.fine_tunes.create(
        dataset_id=dataset[0],
        dataset_version=dataset[1],
        base="tiny",
        preset="quick",
        hyperparameters=TINY_HYPERPARAMETERS,
        **extra,
    )


def _cancel_later(live_server: LiveServer, api_key: str, job_id: str, delay: float = 1.0) -> threading.Timer:
    def cancel() -> None:
        with rushes.Client(api_key=api_key, base_url=live_server.url) as other:
            other.fine_tunes.cancel(job_id)

    timer = threading.Timer(delay, cancel)
    timer.start()
    return timer


def test_bases_create_get_list_cancel_resume_and_events(
    client: rushes.Client, dataset: tuple[str, int]
) -> None:
    assert "tiny" in {b.id for b in client.bases.list()}
    job = _create(client, dataset, model_name="Rain look")
    assert (job.status, job.step, job.total_steps, job.base_id) == ("queued", 0, 4, "tiny")
    assert job.config["lora"] == {"rank": 4, "alpha": 8.0, "targets": None, "dropout": 0.0}
    assert not job.is_final
    assert client.fine_tunes.get(job.id) == job
    assert [j.id for j in client.fine_tunes.list(status="queued")] == [job.id]
    assert list(client.fine_tunes.list(status="cancelled")) == []

    cancelled = client.fine_tunes.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.is_final
    assert [j.id for j in client.fine_tunes.list(status="cancelled")] == [job.id]
    with pytest.raises(rushes.ConflictError):
        client.fine_tunes.cancel(job.id)
    assert client.fine_tunes.resume(job.id).status == "queued"

    events = list(client.fine_tunes.events(job.id, limit=1))  # pages of one
    assert [(e.seq, e.type) for e in events] == [(1, "queued"), (2, "cancelled"), (3, "queued")]
    assert [e.seq for e in client.fine_tunes.events(job.id, after=2)] == [3]


def test_create_sends_the_idempotency_key_given(
    live_server: LiveServer, api_key: str, dataset: tuple[str, int]
) -> None:
    faults = Faults(match=lambda r: r.method == "POST" and r.url.path == "/v1/fine-tunes")
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        _create(client, dataset)
        key = f"test-{uuid.uuid4()}"
        _create(client, dataset, idempotency_key=key)
    sent = [r.headers["idempotency-key"] for r in faults.matching()]
    assert sent[0].startswith("rushes-") and sent[1] == key


def test_errors_map_to_the_hierarchy(client: rushes.Client, dataset: tuple[str, int]) -> None:
    with pytest.raises(rushes.UnprocessableEntityError):
        client.fine_tunes.create(dataset_id=dataset[0], dataset_version=dataset[1], base="sdxl")
    with pytest.raises(rushes.NotFoundError):
        client.fine_tunes.get(str(uuid.uuid4()))
    with pytest.raises(rushes.NotFoundError):
        list(client.fine_tunes.stream(str(uuid.uuid4())))


def test_wait_returns_the_job_another_client_cancelled(
    live_server: LiveServer, api_key: str, client: rushes.Client, dataset: tuple[str, int]
) -> None:
    job = _create(client, dataset)
    seen: list[types.JobEvent] = []
    timer = _cancel_later(live_server, api_key, job.id)
    try:
        final = client.fine_tunes.wait(job.id, progress=True, timeout=30, on_event=seen.append)
    finally:
        timer.join()
    assert final.status == "cancelled" and final.finished_at is not None
    assert [(e.seq, e.type) for e in seen] == [(1, "queued"), (2, "cancelled")]
    # A final job is answered at once; the stream of a final job ends by itself.
    assert client.fine_tunes.wait(job.id, progress=False).status == "cancelled"
    assert [e.seq for e in client.fine_tunes.stream(job.id, after=1)] == [2]


def test_wait_times_out(client: rushes.Client, dataset: tuple[str, int]) -> None:
    job = _create(client, dataset)
    with pytest.raises(rushes.RushesError, match="did not finish in time"):
        client.fine_tunes.wait(job.id, progress=False, timeout=1)


@pytest.mark.parametrize("drop", [True, False], ids=["connection dropped", "stream ended early"])
def test_wait_reconnects_with_last_event_id_and_sees_each_event_once(
    live_server: LiveServer, api_key: str, client: rushes.Client, dataset: tuple[str, int], drop: bool
) -> None:
    job = _create(client, dataset)
    transport = StreamCutter(drop)
    seen: list[types.JobEvent] = []
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=transport) as cut:
        timer = _cancel_later(live_server, api_key, job.id, delay=1.5)
        try:
            final = cut.fine_tunes.wait(job.id, progress=False, timeout=30, on_event=seen.append)
        finally:
            timer.join()
    assert final.status == "cancelled"
    assert [(e.seq, e.type) for e in seen] == [(1, "queued"), (2, "cancelled")]
    assert len(transport.streams) == 2
    assert "last-event-id" not in transport.streams[0].headers
    assert transport.streams[1].headers["last-event-id"] == "1"
    assert transport.streams[1].headers["accept"] == "text/event-stream"


async def test_async_wait_and_stream(
    live_server: LiveServer, api_key: str, client: rushes.Client, dataset: tuple[str, int]
) -> None:
    job = _create(client, dataset)
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as aclient:
        assert "tiny" in {b.id for b in await aclient.bases.list()}
        assert (await aclient.fine_tunes.get(job.id)).status == "queued"

        async def cancel_soon() -> None:
            await asyncio.sleep(1)
            await aclient.fine_tunes.cancel(job.id)

        seen: list[types.JobEvent] = []
        canceller = asyncio.create_task(cancel_soon())
        final = await aclient.fine_tunes.wait(job.id, progress=False, timeout=30, on_event=seen.append)
        await canceller
        assert final.status == "cancelled"
        assert [e.type for e in seen] == ["queued", "cancelled"]
        assert [e.seq async for e in aclient.fine_tunes.stream(job.id)] == [1, 2]
        assert [e.seq async for e in aclient.fine_tunes.events(job.id)] == [1, 2]
        queued = _create(client, dataset)
        with pytest.raises(rushes.RushesError, match="did not finish in time"):
            await aclient.fine_tunes.wait(queued.id, progress=False, timeout=0.5)


def test_sse_parser() -> None:
    parser = SSEParser()
    lines = [": keep-alive", "", "id: 7", "event: progress", 'data: {"a":', "data: 1}", "", "data:x", ""]
    events = [e for e in (parser.feed(line) for line in lines) if e is not None]
    assert [(e.id, e.event, e.data) for e in events] == [
        ("7", "progress", '{"a":\n1}'),
        ("7", "message", "x"),
    ]


def test_models_without_versions(client: rushes.Client, dataset: tuple[str, int]) -> None:
    job = _create(client, dataset, model_name="Look A")
    assert job.model_id is not None
    model = client.models.get(job.model_id)
    assert (model.name, model.base_id, model.version_count) == ("Look A", "tiny", 0)
    assert [m.id for m in client.models.list()] == [model.id]
    assert list(client.models.versions.list(model.id)) == []
    renamed = client.models.update(model.id, name="Look B", description="second pass")
    assert (renamed.name, renamed.description) == ("Look B", "second pass")
    with pytest.raises(rushes.NotFoundError):
        client.models.versions.get(model.id, 1)
    with pytest.raises(rushes.ConflictError):
        client.models.delete(model.id)  # its job is still queued
    client.fine_tunes.cancel(job.id)
    client.models.delete(model.id)
    with pytest.raises(rushes.NotFoundError):
        client.models.get(model.id)


def _give_version(live_server: LiveServer, job_id: str, adapter: bytes, stored: bytes | None = None) -> None:
    """A model version as a worker leaves one, with ``stored`` (default ``adapter``) in storage."""

    async def add() -> tuple[uuid.UUID, uuid.UUID]:
        engine = create_engine(live_server.settings.database_url)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            mark_unscoped(session)
            row = await session.get_one(FineTuneJob, uuid.UUID(job_id))
            await add_version(
                session,
                row,
                adapter_sha256=hashlib.sha256(adapter).hexdigest(),
                adapter_bytes=len(adapter),
                final_loss=0.25,
            )
            await session.commit()
            ids = (row.tenant_id, row.model_version_id)
        await engine.dispose()
        return ids

    tenant_id, version_id = asyncio.run(add())
    storage = storage_from_settings(live_server.settings)
    keys = TenantKeys(tenant_id)
    storage.put_bytes(keys.adapter_file(version_id), adapter if stored is None else stored)
    storage.put_bytes(keys.training_record(version_id), b'{"base": "tiny"}')


def test_download_adapter_verifies_the_digest(
    live_server: LiveServer, client: rushes.Client, dataset: tuple[str, int], tmp_path: Path
) -> None:
    good, bad = _create(client, dataset), _create(client, dataset, model_name="Corrupt")
    client.fine_tunes.cancel(good.id)
    client.fine_tunes.cancel(bad.id)
    adapter = b"safetensors bytes " * 1000
    _give_version(live_server, good.id, adapter)
    _give_version(live_server, bad.id, adapter, stored=adapter[::-1])
    assert good.model_id and bad.model_id

    version = client.models.versions.get(good.model_id, 1)
    assert (version.adapter_bytes, version.final_loss, version.job_id) == (len(adapter), 0.25, good.id)
    assert client.models.versions.record(good.model_id, 1) == {"base": "tiny"}
    card = client.models.versions.card(good.model_id, 1)
    assert (
        card.startswith('---\nbase_model: "tiny"\n')
        and f"# {client.models.get(good.model_id).name}, version 1" in card
    )
    target = tmp_path / "out" / "look.safetensors"
    assert client.models.download_adapter(good.model_id, 1, target) == target
    assert target.read_bytes() == adapter

    corrupt = tmp_path / "corrupt.safetensors"
    with pytest.raises(AdapterDigestError, match="corrupt") as caught:
        client.models.download_adapter(bad.model_id, 1, corrupt)
    assert caught.value.expected == hashlib.sha256(adapter).hexdigest()
    with pytest.raises(rushes.NotFoundError):
        client.models.download_adapter(good.model_id, 2, tmp_path / "missing.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rain.mp4"]  # no temporary files left


async def test_async_download_adapter(
    live_server: LiveServer, api_key: str, client: rushes.Client, dataset: tuple[str, int], tmp_path: Path
) -> None:
    job = _create(client, dataset)
    client.fine_tunes.cancel(job.id)
    adapter = b"\x00\x01" * 5000
    await asyncio.to_thread(_give_version, live_server, job.id, adapter)
    assert job.model_id
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as aclient:
        path = await aclient.models.download_adapter(job.model_id, 1, tmp_path / "a.safetensors")
        assert path.read_bytes() == adapter
        assert [v.number async for v in aclient.models.versions.list(job.model_id)] == [1]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_env(live_server: LiveServer, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSHES_API_KEY", api_key)
    monkeypatch.setenv("RUSHES_BASE_URL", live_server.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_cli_train_and_models(
    cli_env: None,
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    dataset: tuple[str, int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    dataset_id, number = dataset
    tiny = [
        f"--{k.replace('_', '-')}={v}" for k, v in TINY_HYPERPARAMETERS.items() if k != "checkpoint_every"
    ]
    code, out, err = _run(
        capsys, "train", dataset_id, str(number), "--base", "tiny", "--preset", "quick", *tiny
    )
    assert code == 0, err
    job = client.fine_tunes.get(out.strip())
    assert job.status == "queued" and job.total_steps == 4 and job.config["lora"]["rank"] == 4

    code, out, err = _run(capsys, "models")
    assert code == 0 and out.splitlines()[1].split()[0] == job.model_id
    code, out, _ = _run(capsys, "models", "list", "--json")
    assert code == 0 and [line for line in out.splitlines()] and '"version_count": 0' in out
    code, out, _ = _run(capsys, "models", "versions", str(job.model_id))
    assert code == 0 and out == "no versions yet\n"
    code, _, err = _run(capsys, "models", "download", str(job.model_id), "1", "-o", str(tmp_path / "x"))
    assert code == 1 and err.startswith("rushes: error: 404 ") and err.count("\n") == 1
    code, _, err = _run(capsys, "train", dataset_id, str(number), "--base", "nope")
    assert code == 1 and err.startswith("rushes: error: 422 ") and err.count("\n") == 1

    # --wait follows the job; a cancelled job is an error (one line), its id on stdout first.
    before = {j.id for j in client.fine_tunes.list()}
    waiting: dict[str, Any] = {}

    def cancel_new() -> None:
        for _ in range(100):
            new = {j.id for j in client.fine_tunes.list()} - before
            if new:
                waiting["id"] = new.pop()
                with rushes.Client(api_key=api_key, base_url=live_server.url) as other:
                    other.fine_tunes.cancel(waiting["id"])
                return
            threading.Event().wait(0.1)

    canceller = threading.Timer(1.0, cancel_new)
    canceller.start()
    try:
        code, out, err = _run(
            capsys,
            "train",
            dataset_id,
            str(number),
            "--base",
            "tiny",
            "--preset",
            "quick",
            "--steps",
            "4",
            # The tiny base places at most 512-pixel sides; the preset's 832 would be refused.
            "--width",
            "32",
            "--wait",
        )
    finally:
        canceller.join()
    assert code == 1
    assert out.splitlines() == [waiting["id"], "cancelled"]
    assert err == f"rushes: error: fine-tune {waiting['id']} cancelled\n"


def test_cli_writes_a_model_card(
    cli_env: None,
    live_server: LiveServer,
    client: rushes.Client,
    dataset: tuple[str, int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    job = _create(client, dataset)
    client.fine_tunes.cancel(job.id)
    _give_version(live_server, job.id, b"weights")
    assert job.model_id
    code, printed, _ = _run(capsys, "models", "card", job.model_id, "1")
    assert code == 0 and printed.startswith("---\nbase_model: ")
    target = tmp_path / "README.md"
    assert _run(capsys, "models", "card", job.model_id, "1", "-o", str(target)) == (0, f"{target}\n", "")
    assert target.read_text() == printed
    code, _, err = _run(capsys, "models", "card", job.model_id, "2")
    assert code == 1 and err.startswith("rushes: error: 404 ")
