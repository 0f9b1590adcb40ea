"""The chart boots the app: the environment it gives each container starts real processes.

The chart is rendered with ``boot-values.yaml`` (every secret an ``existingSecret``); each
container's environment is resolved as the kubelet would (its ConfigMaps from the render,
its Secrets from the ones this test provides), and its ``args`` run under the image's
entrypoint, ``rushes-server`` (tests/helm/test_dockerfile.py checks the images start so),
this venv's. Only what cannot work outside a cluster is changed, each change named where
it is made (``Pods`` and the ``cluster`` fixture). Then the migration hook, the API, a GPU
pool's worker (on the CPU) and the background roles run against the suite's PostgreSQL and
S3 server on loopback, and a fine-tune and a generation go through them with the SDK. A
setting the app cannot read (a misspelt name, a missing or wrong value) fails the test.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest
import rushes

from core.settings import Settings
from tests.conftest import POSTGRES_URL, _pg_admin, _pg_url, free_port
from tests.helm.chart import NAMESPACE, RELEASE, Obj, Rendered, load_yaml, render
from tests.helpers import PASSWORD, TINY_HYPERPARAMETERS
from tests.media_samples import make_clip

VALUES = Path(__file__).with_name("boot-values.yaml")
# The images' ENTRYPOINT, and the same program in this venv.
ENTRYPOINT = "rushes-server"
PROGRAM = str(Path(sys.executable).with_name(ENTRYPOINT))
WEBHOOK_KEY = "boot-test-webhook-signing-key-0123456789"
METRICS_TOKEN = "boot-test-metrics-token"
S3_KEY, S3_SECRET = "testing", "testing"  # moto takes any


def _secrets(database_url: str) -> dict[str, dict[str, str]]:
    """The Secrets an operator creates before installing, named as boot-values.yaml names them."""
    return {
        "boot-database": {"database-url": database_url},
        "boot-s3": {"s3-access-key": S3_KEY, "s3-secret-key": S3_SECRET},
        "boot-webhooks": {"webhook-signing-key": WEBHOOK_KEY},
        "boot-metrics": {"metrics-token": METRICS_TOKEN},
    }


# --------------------------------------------------- the environment a pod gets --


@dataclass(frozen=True)
class Container:
    pod: str  # kind/name of what makes the pod
    argv: list[str]  # its command (the image's entrypoint unless the chart names one) and args
    env: dict[str, str]


def _config_maps(rendered: Rendered) -> dict[str, dict[str, str]]:
    return {obj["metadata"]["name"]: obj.get("data") or {} for obj in rendered.of_kind("ConfigMap")}


def _lookup(source: dict[str, dict[str, str]], ref: Obj, what: str) -> str | None:
    found = source.get(ref["name"], {}).get(ref["key"])
    assert found is not None or ref.get("optional"), f"{what} {ref['name']} has no key {ref['key']}"
    return found


def resolve(rendered: Rendered, secrets: dict[str, dict[str, str]], kind: str, name: str) -> Container:
    """The one container of a rendered workload, with the environment Kubernetes gives it:
    ``envFrom`` first, then ``env`` over it, in order."""
    template = rendered.get(kind, name)["spec"]["template"]
    (container,) = template["spec"]["containers"]
    config_maps = _config_maps(rendered)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref, found = source["configMapRef"], config_maps
        else:
            ref, found = source["secretRef"], secrets
        assert ref["name"] in found or ref.get("optional"), f"{name} reads {ref['name']}, which nothing makes"
        env |= {source.get("prefix", "") + k: v for k, v in found.get(ref["name"], {}).items()}
    fields = {"metadata.name": f"{name}-0", "metadata.namespace": NAMESPACE, "status.podIP": "127.0.0.1"}
    for entry in container.get("env", []):
        value_from = entry.get("valueFrom")
        value: str | None
        if value_from is None:
            value = entry.get("value", "")
        elif "secretKeyRef" in value_from:
            value = _lookup(secrets, value_from["secretKeyRef"], "Secret")
        elif "configMapKeyRef" in value_from:
            value = _lookup(config_maps, value_from["configMapKeyRef"], "ConfigMap")
        else:
            value = fields[value_from["fieldRef"]["fieldPath"]]
        if value is not None:
            env[entry["name"]] = value
    argv = [*(container.get("command") or [ENTRYPOINT]), *container.get("args", [])]
    return Container(f"{kind}/{name}", argv, env)


def unknown_settings(env: dict[str, str]) -> list[str]:
    """``RUSHES_*`` names no setting has. Settings ignore unknown names, so a misspelt one would
    otherwise leave its setting at the default without a word."""
    unknown = []
    for name in env:
        if not name.startswith("RUSHES_"):
            continue
        group, _, field = name.removeprefix("RUSHES_").lower().partition("__")
        model = Settings.model_fields.get(group)
        if model is None or (field and field not in getattr(model.annotation, "model_fields", {})):
            unknown.append(name)
    return unknown


# ------------------------------------------------------------- the processes --


class Pods:
    """The containers' processes, each with a folder of its own, stopped at the end.

    Every container's environment is the chart's with one change: its emptyDir volumes at
    ``/data`` (``RUSHES_DATA_DIR``) and ``/tmp`` (``HOME``) become folders of the test's.
    Its program is this venv's ``rushes-server``. Any other change is named where the
    container starts.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self, container: Container, **overrides: str) -> tuple[Path, dict[str, str]]:
        assert {"RUSHES_DATA_DIR", "HOME"} <= set(container.env), (
            f"{container.pod} sets no data folder or HOME"
        )
        folder = self.tmp / container.pod.replace("/", "-")
        (folder / "data").mkdir(parents=True)
        (folder / "tmp").mkdir()
        moved = {"RUSHES_DATA_DIR": str(folder / "data"), "HOME": str(folder / "tmp")}
        return folder, {**container.env, **moved, **overrides}

    @staticmethod
    def program(container: Container, argv: list[str]) -> list[str]:
        assert argv[0] == ENTRYPOINT, f"{container.pod} runs {argv[0]}, not {ENTRYPOINT}"
        return [PROGRAM, *argv[1:]]

    def run(self, container: Container) -> None:
        """Run to the end, as a Job's pod."""
        folder, env = self.env(container)
        argv = self.program(container, container.argv)
        ran = subprocess.run(argv, env=env, cwd=folder, capture_output=True, text=True, timeout=180)
        assert ran.returncode == 0, f"{container.pod} failed:\n{ran.stdout}\n{ran.stderr}"

    def start(self, container: Container, argv: list[str] | None = None, **overrides: str) -> None:
        folder, env = self.env(container, **overrides)
        with (folder / "output.log").open("w") as log:
            self.processes.append(
                subprocess.Popen(
                    self.program(container, argv or container.argv),
                    env=env,
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.parent.name}\n{log.read_text()[-3000:]}"
            for log in sorted(self.tmp.glob("*/output.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def replaced(container: Container, **options: str) -> list[str]:
    """The container's command line with the value after each ``--option`` named changed."""
    argv = list(container.argv)
    for option, value in options.items():
        flag = "--" + option.replace("_", "-")
        assert flag in argv, f"{container.pod} runs {argv}, with no {flag}"
        argv[argv.index(flag) + 1] = value
    return argv


@contextmanager
def empty_database(tmp: Path) -> Iterator[str]:
    """A database with no tables yet, for the migration hook to make: one of the suite's
    PostgreSQL, else (``RUSHES_TEST_POSTGRES_URL`` unset) an SQLite file the processes share."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{tmp / 'rushes.db'}"
        return
    name = f"rushes_boot_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_ready(url: str, pods: Pods, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        assert all(p.poll() is None for p in pods.processes), f"a process ended:\n{pods.logs()}"
        assert time.monotonic() < deadline, f"the API never got ready:\n{pods.logs()}"
        time.sleep(0.5)


@dataclass(frozen=True)
class Cluster:
    url: str
    worker_metrics: str
    s3_endpoint: str
    pods: Pods


@pytest.fixture
def cluster(s3_server: str, tmp_path: Path) -> Iterator[Cluster]:
    values = load_yaml(VALUES)
    values["s3"] |= {"endpoint": s3_server, "bucket": f"rushes-boot-{uuid.uuid4().hex[:12]}"}
    rendered = render(values)
    fullname = f"{RELEASE}-rushes"
    pods = Pods(tmp_path)
    with empty_database(tmp_path) as database_url:
        secrets = _secrets(database_url)
        migrate = resolve(rendered, secrets, "Job", f"{fullname}-migrate")
        api = resolve(rendered, secrets, "Deployment", f"{fullname}-api")
        worker = resolve(rendered, secrets, "Deployment", f"{fullname}-worker-gpu")
        background = resolve(rendered, secrets, "Deployment", f"{fullname}-background")
        for container in (migrate, api, worker, background):
            assert unknown_settings(container.env) == [], f"{container.pod} sets unknown settings"
        try:
            # The hook Job runs to its end before the release's pods start, as Helm runs it.
            pods.run(migrate)
            port = free_port()
            # Loopback and a free port, where the pod listens on every interface of its own.
            pods.start(api, replaced(api, host="127.0.0.1", port=str(port)))
            # The pool's GPU is this machine's CPU; its metrics on loopback and a free port,
            # where the pod serves them on every interface of its own at a fixed port.
            metrics_port = free_port()
            pods.start(
                worker,
                replaced(worker, device="cpu"),
                RUSHES_METRICS__WORKER_HOST="127.0.0.1",
                RUSHES_METRICS__WORKER_PORT=str(metrics_port),
            )
            pods.start(background)
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(url, pods)
            yield Cluster(url, f"http://127.0.0.1:{metrics_port}/metrics", s3_server, pods)
        finally:
            pods.stop()


# --------------------------------------------------------------------- tests --


def test_resolving_fails_on_a_secret_key_that_is_not_there() -> None:
    values = load_yaml(VALUES)
    values["s3"] |= {"endpoint": "127.0.0.1:9000"}
    rendered = render(values)
    secrets = _secrets("postgresql+asyncpg://u@127.0.0.1/db")
    del secrets["boot-s3"]["s3-secret-key"]
    with pytest.raises(AssertionError, match="boot-s3 has no key s3-secret-key"):
        resolve(rendered, secrets, "Deployment", f"{RELEASE}-rushes-api")


def test_a_misspelt_setting_is_caught() -> None:
    env = {"RUSHES_STORAGE__S3_ENDPOINT": "x", "RUSHES_STORAGE__S3_ENDPIONT": "x", "RUSHES_DATA_DIR": "/d"}
    assert unknown_settings({**env, "RUSHES_NOPE__X": "1", "HOME": "/tmp"}) == [
        "RUSHES_STORAGE__S3_ENDPIONT",
        "RUSHES_NOPE__X",
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)  # about two minutes of two cores: four processes, a fine-tune and a render
def test_the_chart_boots_the_app_and_a_fine_tune_and_a_generation_go_through(
    cluster: Cluster, tmp_path: Path
) -> None:
    session = rushes.sign_up(
        email="boot@example.com", password=PASSWORD, tenant_name="Boot", base_url=cluster.url
    )
    with rushes.Client(session=session.cookies, base_url=cluster.url) as signed_in:
        key = signed_in.api_keys.create(name="boot").key

    with rushes.Client(api_key=key, base_url=cluster.url, timeout=60) as client:
        assert [base.id for base in client.bases.list()] == ["tiny"]
        asset = client.assets.upload(make_clip(tmp_path / "rain.mp4"), rights="owned", progress=False)
        dataset = client.datasets.create(name="Rain")
        version = client.datasets.versions.create(
            dataset.id, items=[{"asset_id": asset.id, "caption": "rain on glass"}], trigger_word="sks"
        )
        job = client.fine_tunes.create(
            dataset_id=dataset.id,
            dataset_version=version.number,
            base="tiny",
            preset="quick",
            hyperparameters=TINY_HYPERPARAMETERS,
        )
        job = client.fine_tunes.wait(job.id, progress=False, timeout=240)
        assert job.status == "succeeded", f"{job}\n{cluster.pods.logs()}"
        assert job.model_id is not None

        generation = client.generations.create(job.model_id, "rain on a tram window", frames=5, steps=2)
        generation = client.generations.wait(generation, progress=False, timeout=180)
        assert generation.status == "succeeded", f"{generation}\n{cluster.pods.logs()}"

        # The video is in the bucket: the API answers with a signed URL on the S3 server.
        with httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {key}"}) as http:
            answer = http.get(f"/v1/generations/{generation.id}/outputs/video.mp4")
        assert answer.is_redirect, answer.text
        assert answer.headers["location"].startswith(f"http://{cluster.s3_endpoint}/")
        video = client.generations.download(generation, tmp_path / "video.mp4")
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 5

    # The metrics token and the worker's metrics port reached the processes as set.
    assert httpx.get(f"{cluster.url}/metrics").status_code == 401
    scraped = httpx.get(f"{cluster.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "rushes_" in scraped.text
    assert httpx.get(cluster.worker_metrics).status_code == 200
