"""``client.generations``, the models' guardrails and the ``generate`` / ``generations`` commands,
against the live server.

No generation worker runs here: a test plays one through ``GenerationQueue`` (claim, report
progress, store the outputs, succeed), as ``tests/integration/test_generations.py`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import rushes
from rushes import types
from rushes.cli import main

from core.storage import TenantKeys
from core.storage.keys import OUTPUT_MEDIA_TYPES, OUTPUT_POSTER, OUTPUT_PREVIEW, OUTPUT_VIDEO
from service.db.engine import create_engine, session_factory
from service.generations.queue import GenerationQueue
from tests.sdk.conftest import LiveServer, make_model
from tests.sdk.faults import Faults, FaultTransport, StreamCutter

PROMPT = "rain on a window at night"
WORKER = "sdk-test-worker"
# Outputs as a worker stores them; the video is several read chunks long.
OUTPUTS = {
    OUTPUT_VIDEO: b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 1200,
    OUTPUT_POSTER: b"\xff\xd8\xff\xe0 a poster " * 40,
    OUTPUT_PREVIEW: b"RIFF....WEBPVP8X a preview " * 40,
}


def _render(server: LiveServer, generation_id: str, outputs: dict[str, bytes] = OUTPUTS) -> None:
    """Play a worker: claim the generation, report half its steps, store its outputs, succeed.

    A failure after the claim fails the generation, so nothing waits on it for ever.
    """

    async def render() -> None:
        engine = create_engine(server.settings.database_url)
        queue = GenerationQueue(session_factory(engine), server.settings.generations)
        try:
            claimed = await queue.claim_batch(WORKER, ["tiny"], 200)
            others = [c.id for c in claimed if str(c.id) != generation_id]
            if others:
                await queue.release(WORKER, others)
            mine = [c for c in claimed if str(c.id) == generation_id]
            assert mine, f"generation {generation_id} was not the next to render"
            (generation,) = mine
            try:
                await queue.heartbeat(WORKER, [generation.id], step=generation.steps // 2)
                keys = TenantKeys(generation.tenant_id)
                for name, data in outputs.items():
                    server.storage.put_bytes(keys.output(generation.id, name), data, OUTPUT_MEDIA_TYPES[name])
                size = sum(len(data) for data in outputs.values())
                assert await queue.finish_succeeded(WORKER, generation.id, output_bytes=size, gpu_seconds=1.5)
            except BaseException:
                await queue.finish_failed(WORKER, generation.id, "the test worker failed")
                raise
        finally:
            await engine.dispose()

    asyncio.run(render())


class Renderer(threading.Thread):
    """Renders a generation from another thread after ``delay`` seconds: the one named, or else the
    first queued one of the tenant that is not in ``skip``. If rendering fails, the generation is
    cancelled instead, so that whatever waits for it returns; ``join()`` re-raises the failure."""

    def __init__(
        self,
        server: LiveServer,
        api_key: str,
        generation_id: str | None = None,
        *,
        skip: set[str] | None = None,
        delay: float = 1.0,
    ) -> None:
        super().__init__(name="render", daemon=True)
        self.server, self.api_key, self.generation_id = server, api_key, generation_id
        self.skip, self.delay = skip or set(), delay
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        with rushes.Client(api_key=self.api_key, base_url=self.server.url) as sdk:
            try:
                time.sleep(self.delay)
                deadline = time.monotonic() + 20
                while self.generation_id is None and time.monotonic() < deadline:
                    new = [g.id for g in sdk.generations.list(status="queued") if g.id not in self.skip]
                    self.generation_id = new[0] if new else None
                    time.sleep(0.05)
                assert self.generation_id is not None, "no generation to render"
                _render(self.server, self.generation_id)
            except BaseException as exc:
                self.error = exc
                if self.generation_id is not None:
                    with contextlib.suppress(rushes.ConflictError):  # already final
                        sdk.generations.cancel(self.generation_id)

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def test_create_get_list_cancel_and_events(client: rushes.Client, model_id: str) -> None:
    generation = client.generations.create(model_id, PROMPT)
    # What was left out took the base's defaults (None is never sent), and a seed was drawn.
    assert isinstance(generation, types.Generation)
    shape = (generation.width, generation.height, generation.frames, generation.steps, generation.guidance)
    assert shape == (64, 64, 9, 8, 5.0)
    assert (generation.adapter_strength, generation.negative_prompt, generation.version) == (1.0, "", 1)
    assert (generation.status, generation.step, generation.outputs, generation.base_id) == (
        "queued",
        0,
        None,
        "tiny",
    )
    assert 0 <= generation.seed < 2**31 and not generation.is_final and generation.total_steps == 8

    explicit = client.generations.create(
        model_id,
        PROMPT,
        version=1,
        negative_prompt="blur",
        width=96,
        height=48,
        frames=13,
        steps=3,
        guidance=1.0,
        seed=1234,
        adapter_strength=0.6,
    )
    settings = (explicit.negative_prompt, explicit.width, explicit.height, explicit.frames, explicit.steps)
    assert settings == ("blur", 96, 48, 13, 3)
    assert (explicit.guidance, explicit.seed, explicit.adapter_strength) == (1.0, 1234, 0.6)

    assert client.generations.get(generation.id) == generation
    assert [g.id for g in client.generations.list()] == [explicit.id, generation.id]  # newest first
    pager = client.generations.list(model_id=model_id, limit=1)
    assert [len(page.items) for page in pager.pages()] == [1, 1]
    assert list(client.generations.list(model_id=str(uuid.uuid4()))) == []

    cancelled = client.generations.cancel(explicit.id)
    assert cancelled.status == "cancelled" and cancelled.is_final and cancelled.finished_at is not None
    assert [g.id for g in client.generations.list(status="queued")] == [generation.id]
    assert [g.id for g in client.generations.list(status="cancelled")] == [explicit.id]
    with pytest.raises(rushes.ConflictError, match="already cancelled"):
        client.generations.cancel(explicit.id)

    events = list(client.generations.events(explicit.id, limit=1))  # pages of one
    assert [(e.seq, e.type) for e in events] == [(1, "queued"), (2, "cancelled")]
    assert events[0].data == {"model_version": 1}
    assert [e.seq for e in client.generations.events(explicit.id, after=1)] == [2]
    # A final generation: wait answers at once, and its stream ends by itself.
    assert client.generations.wait(cancelled, progress=False).status == "cancelled"
    assert [e.seq for e in client.generations.stream(cancelled)] == [1, 2]
    assert [e.seq for e in client.generations.stream(explicit.id, after=1)] == [2]

    with pytest.raises(rushes.NotFoundError):
        client.generations.get(str(uuid.uuid4()))
    with pytest.raises(rushes.NotFoundError):
        client.generations.create(str(uuid.uuid4()), PROMPT)
    with pytest.raises(rushes.UnprocessableEntityError, match="multiples of 16"):
        client.generations.create(model_id, PROMPT, width=50)


def _is_generation_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/v1/generations"


@pytest.mark.parametrize(
    ("faults", "tries"),
    [
        (Faults(match=_is_generation_create, status=503, fail_times=2), 3),
        (Faults(match=_is_generation_create, lose_answers=1), 2),
    ],
    ids=["503 twice", "answer lost"],
)
def test_a_retried_create_makes_one_generation(
    live_server: LiveServer, api_key: str, client: rushes.Client, model_id: str, faults: Faults, tries: int
) -> None:
    transport = FaultTransport(faults)
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=transport) as flaky:
        generation = flaky.generations.create(model_id, PROMPT, seed=7)
    sent = faults.matching()
    assert len(sent) == tries
    keys = {request.headers["idempotency-key"] for request in sent}
    assert len(keys) == 1 and keys.pop().startswith("rushes-")
    assert [g.id for g in client.generations.list()] == [generation.id]


@pytest.mark.parametrize("drop", [True, False], ids=["connection dropped", "stream ended early"])
def test_wait_follows_the_stream_to_success_and_downloads_the_outputs(
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    model_id: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    drop: bool,
) -> None:
    generation = client.generations.create(model_id, PROMPT)
    transport = StreamCutter(drop)
    seen: list[types.GenerationEvent] = []
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=transport) as cut:
        renderer = Renderer(live_server, api_key, generation.id, delay=1.5)
        try:
            final = cut.generations.wait(generation, timeout=30, on_event=seen.append)
        finally:
            renderer.join()
    assert (final.status, final.step, final.gpu_seconds) == ("succeeded", 8, 1.5)
    assert final.outputs is not None and set(final.outputs) == set(OUTPUTS)
    # Every event once, in order, across the reconnection.
    assert [e.type for e in seen] == ["queued", "started", "progress", "succeeded"]
    assert [e.seq for e in seen] == [1, 2, 3, 4]
    assert seen[2].data == {"step": 4, "total_steps": 8, "eta_seconds": None}
    assert len(transport.streams) == 2
    assert "last-event-id" not in transport.streams[0].headers
    assert transport.streams[1].headers["last-event-id"] == "1"
    assert f"generation {generation.id[:8]}" in capsys.readouterr().err  # the progress bar

    folder = tmp_path / "out"
    video = client.generations.download(final, folder / "rain.mp4")
    assert video == folder / "rain.mp4" and video.read_bytes() == OUTPUTS[OUTPUT_VIDEO]
    poster = client.generations.download(generation.id, folder / "poster.jpg", name=OUTPUT_POSTER)
    assert poster.read_bytes() == OUTPUTS[OUTPUT_POSTER]
    # Into a folder: named as the server names it.
    preview = client.generations.download(final, folder, OUTPUT_PREVIEW)
    assert preview == folder / f"generation-{generation.id}-{OUTPUT_PREVIEW}"
    assert preview.read_bytes() == OUTPUTS[OUTPUT_PREVIEW]
    with pytest.raises(rushes.NotFoundError):  # succeeded, but it has no such output
        client.generations.download(final, folder / "x.gif", name="other.gif")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["rain.mp4", "poster.jpg", preview.name])


def test_download_before_success_raises_and_writes_nothing(
    client: rushes.Client, model_id: str, tmp_path: Path
) -> None:
    generation = client.generations.create(model_id, PROMPT)
    target = tmp_path / "out" / "video.mp4"
    with pytest.raises(rushes.GenerationNotSucceededError, match="is queued") as queued:
        client.generations.download(generation, target)
    assert queued.value.status == "queued" and queued.value.generation.id == generation.id
    assert isinstance(queued.value.__cause__, rushes.NotFoundError)
    client.generations.cancel(generation.id)
    with pytest.raises(rushes.GenerationNotSucceededError, match="was cancelled"):
        client.generations.download(generation.id, target)  # the stale object is not trusted
    with pytest.raises(rushes.NotFoundError):
        client.generations.download(str(uuid.uuid4()), target)
    assert not target.parent.exists()  # nothing was written, not even the folder


def test_download_follows_the_signed_url_without_the_api_key(
    s3_live_server: LiveServer, tmp_path: Path
) -> None:
    server = s3_live_server
    api_key = server.new_api_key()
    model = make_model(server, api_key, tmp_path)
    faults = Faults()  # injects nothing: records every request sent
    with rushes.Client(api_key=api_key, base_url=server.url, transport=FaultTransport(faults)) as client:
        generation = client.generations.create(model, PROMPT)
        _render(server, generation.id)
        faults.sent.clear()
        path = client.generations.download(generation, tmp_path / "video.mp4")
    assert path.read_bytes() == OUTPUTS[OUTPUT_VIDEO]
    api, storage = faults.sent
    assert api.url.path.endswith(f"/outputs/{OUTPUT_VIDEO}") and api.headers["authorization"]
    assert api.url.netloc != storage.url.netloc and "X-Amz-Signature" in str(storage.url)
    assert "authorization" not in storage.headers and api_key not in str(storage.headers)


def test_guardrails_and_a_refusal(client: rushes.Client, model_id: str) -> None:
    assert client.models.get_guardrails(model_id) == types.Guardrails()
    assert client.models.get(model_id).guardrails == types.Guardrails()

    guardrails = client.models.set_guardrails(
        model_id, blocked_terms=["storm", "red sky"], max_height=48, memorisation_policy="block"
    )
    assert guardrails == types.Guardrails(
        blocked_terms=["storm", "red sky"], max_height=48, memorisation_policy="block"
    )
    assert client.models.get_guardrails(model_id) == guardrails
    assert client.models.get(model_id).guardrails == guardrails

    with pytest.raises(rushes.UnprocessableEntityError) as blocked:
        client.generations.create(model_id, "A STORM at sea", height=48)
    assert blocked.value.message == "This model's owner blocks the term 'storm' in prompts."
    assert blocked.value.body["guardrail"] == "blocked_terms" and blocked.value.status_code == 422
    with pytest.raises(rushes.UnprocessableEntityError) as too_tall:
        client.generations.create(model_id, PROMPT)  # the base's default height is 64
    assert too_tall.value.detail == "This model allows at most 48 pixels of height; the request asks for 64."
    assert too_tall.value.body["guardrail"] == "max_height"
    # The negative prompt names what to avoid: blocked terms are not looked for there.
    allowed = client.generations.create(model_id, "a calm sea", negative_prompt="storm", height=48)
    assert allowed.status == "queued"

    assert client.models.set_guardrails(model_id) == types.Guardrails()  # everything replaced
    with pytest.raises(TypeError):
        client.models.set_guardrails(model_id, blocked_terms="storm")


async def test_async_create_wait_download_and_timeout(
    live_server: LiveServer, api_key: str, model_id: str, tmp_path: Path
) -> None:
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as aclient:
        generation = await aclient.generations.create(model_id, PROMPT, seed=3)
        assert (await aclient.generations.get(generation.id)).seed == 3
        with pytest.raises(rushes.GenerationNotSucceededError):
            await aclient.generations.download(generation, tmp_path / "early.mp4")
        with pytest.raises(rushes.GenerationWaitTimeout, match="did not finish in time") as late:
            await aclient.generations.wait(generation, progress=False, timeout=0.5)
        assert isinstance(late.value, rushes.WaitTimeout)

        renderer = Renderer(live_server, api_key, generation.id, delay=0.5)
        seen: list[types.GenerationEvent] = []
        final = await aclient.generations.wait(
            generation.id, progress=False, timeout=30, on_event=seen.append
        )
        await asyncio.to_thread(renderer.join)
        assert final.status == "succeeded"
        assert [e.type for e in seen] == ["queued", "started", "progress", "succeeded"]
        assert [e.seq async for e in aclient.generations.stream(generation.id, after=2)] == [3, 4]
        assert [e.seq async for e in aclient.generations.events(generation.id)] == [1, 2, 3, 4]
        assert [g.id async for g in aclient.generations.list(status="succeeded")] == [generation.id]
        path = await aclient.generations.download(final, tmp_path / "video.mp4")
        assert path.read_bytes() == OUTPUTS[OUTPUT_VIDEO]
        assert await aclient.models.get_guardrails(model_id) == types.Guardrails()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.mp4", "video.mp4"]


EXPLICIT = {
    "negative_prompt": "blur",
    "width": 96,
    "height": 48,
    "frames": 13,
    "steps": 3,
    "guidance": 1.5,
    "seed": 99,
    "adapter_strength": 0.5,
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_env(live_server: LiveServer, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSHES_API_KEY", api_key)
    monkeypatch.setenv("RUSHES_BASE_URL", live_server.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_cli_generate_and_generations(
    cli_env: None,
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    model_id: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = [f"--{k.replace('_', '-')}={v}" for k, v in EXPLICIT.items() if k != "adapter_strength"]
    code, out, err = _run(capsys, "generate", model_id, PROMPT, "--version", "1", *options, "--strength=0.5")
    assert code == 0, err
    queued = client.generations.get(out.strip())
    shown = {k: v for k, v in queued.to_dict().items() if k in EXPLICIT}
    assert shown == EXPLICIT and queued.status == "queued" and queued.version == 1
    client.generations.cancel(queued.id)

    # -o waits for the generation, then saves its video: the id first, then the path.
    target = tmp_path / "clips" / "rain.mp4"
    renderer = Renderer(live_server, api_key, skip={queued.id})
    try:
        code, out, err = _run(capsys, "generate", model_id, PROMPT, "-o", str(target))
    finally:
        renderer.join()
    assert code == 0, err
    assert out.splitlines() == [renderer.generation_id, str(target)]
    assert target.read_bytes() == OUTPUTS[OUTPUT_VIDEO]

    code, out, _ = _run(capsys, "generations")
    header, *lines = out.splitlines()
    assert header.split() == ["id", "status", "model", "version", "created", "(UTC)", "prompt"]
    rows = [line.split(maxsplit=6) for line in lines]
    assert [(r[0], r[1]) for r in rows] == [(renderer.generation_id, "succeeded"), (queued.id, "cancelled")]
    assert rows[0][2:4] == [model_id, "1"] and rows[0][-1] == PROMPT
    code, out, _ = _run(capsys, "generations", "--status", "cancelled", "--json")
    assert code == 0 and [line.count('"id"') for line in out.splitlines()] == [1]
    code, out, _ = _run(capsys, "generations", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 2
    assert (
        _run(capsys, "generations", "list", "--status", "cancelled", "--field", "id")[1] == f"{queued.id}\n"
    )

    # One generation: shown, an output saved, cancelled.
    code, out, _ = _run(capsys, "generations", "get", renderer.generation_id)
    assert code == 0 and out.startswith(f"{renderer.generation_id}: succeeded, step ")
    code, out, err = _run(
        capsys, "generations", "download", renderer.generation_id, "--name", "poster.jpg", "-o", str(tmp_path)
    )
    assert code == 0, err
    assert (
        out == f"{tmp_path / f'generation-{renderer.generation_id}-poster.jpg'}\n"
        and Path(out.strip()).read_bytes() == OUTPUTS[OUTPUT_POSTER]
    )
    code, _, err = _run(capsys, "generations", "download", queued.id)
    assert code == 1 and err == f"rushes: error: Generation {queued.id} was cancelled; it has no outputs.\n"

    # Errors: one line on stderr, a failing status.
    client.models.set_guardrails(model_id, blocked_terms=["storm"])
    code, out, err = _run(capsys, "generate", model_id, "a storm at sea", "-o", str(tmp_path / "no.mp4"))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("rushes: error: 422 This model's owner blocks the term 'storm' in prompts.")
    assert not (tmp_path / "no.mp4").exists()
    code, _, err = _run(capsys, "generate", str(uuid.uuid4()), PROMPT)
    assert code == 1 and err.startswith("rushes: error: 404 ") and err.count("\n") == 1

    # --wait on a generation that is cancelled: its id, its status, then the error.
    before = {g.id for g in client.generations.list()}

    def cancel_new() -> None:
        for _ in range(100):
            if new := [g.id for g in client.generations.list(status="queued") if g.id not in before]:
                client.generations.cancel(new[0])
                return
            time.sleep(0.05)

    canceller = threading.Timer(0.5, cancel_new)
    canceller.start()
    try:
        code, out, err = _run(capsys, "generate", model_id, PROMPT, "--wait", "--no-progress")
    finally:
        canceller.join()
    (cancelled_id, status) = out.splitlines()
    assert code == 1 and status == "cancelled"
    assert err == f"rushes: error: generation {cancelled_id} cancelled\n"
