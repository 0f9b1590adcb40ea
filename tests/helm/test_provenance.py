"""The C2PA signing certificate in the chart: one Secret, mounted read-only into every worker
pod, that the provenance settings name; without it, NOTES warns that each pod signs alone."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import helm_python as helm
import jsonschema
import pytest

from core.settings import Settings
from tests.helm.chart import (
    CHART,
    CI_NAMES,
    Obj,
    Rendered,
    ci_values,
    containers,
    env_of,
    pod_specs,
    render,
    render_ci,
)

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
SIGNER = "rushes-c2pa-signer"
CERTIFICATE = "RUSHES_PROVENANCE__CERTIFICATE_FILE"
PRIVATE_KEY = "RUSHES_PROVENANCE__PRIVATE_KEY_FILE"
TIMESTAMP = "RUSHES_PROVENANCE__TIMESTAMP_URL"
WARNING = "provenance.existingSecret is not set"


def _with_provenance(name: str, **provenance: str) -> Rendered:
    values = ci_values(name)
    values["provenance"] = {"existingSecret": SIGNER, **provenance}
    return render(values)


def _worker_pods(rendered: Rendered) -> list[tuple[str, Obj]]:
    found = [
        (where, spec)
        for where, meta, spec in pod_specs(rendered)
        if meta.get("labels", {}).get("app.kubernetes.io/component") == "worker"
    ]
    assert found, "no worker pods"
    return found


def _signing_files(where: str, spec: Obj) -> dict[str, tuple[str, str]]:
    """Setting name to (Secret key, file path) as the worker container sees it."""
    (volume,) = [volume for volume in spec["volumes"] if volume["name"] == "provenance"]
    (container,) = spec["containers"]
    (mount,) = [mount for mount in container["volumeMounts"] if mount["name"] == "provenance"]
    assert mount["readOnly"] is True, where
    by_path = {item["path"]: item["key"] for item in volume["secret"]["items"]}
    env = env_of(container)
    files = {}
    for setting in (CERTIFICATE, PRIVATE_KEY):
        path = PurePosixPath(env[setting]["value"])
        assert path.parent == PurePosixPath(mount["mountPath"]), f"{where}: {setting} is outside the mount"
        assert path.name in by_path, f"{where}: {setting} names a file the Secret volume does not project"
        files[setting] = (by_path[path.name], str(path))
    return files


@pytest.mark.parametrize("name", CI_NAMES)
def test_every_worker_pod_mounts_the_signing_secret_the_settings_name(name: str) -> None:
    rendered = _with_provenance(name)
    for where, spec in _worker_pods(rendered):
        (volume,) = [volume for volume in spec["volumes"] if volume["name"] == "provenance"]
        assert volume["secret"]["secretName"] == SIGNER, where
        # The key is readable by the pod's fsGroup only, which the worker runs in.
        assert volume["secret"]["defaultMode"] == 0o400, where
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"], where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        files = _signing_files(where, spec)
        assert {setting: key for setting, (key, _) in files.items()} == {
            CERTIFICATE: "tls.crt",
            PRIVATE_KEY: "tls.key",
        }, where


def test_the_secret_keys_can_be_named() -> None:
    rendered = _with_provenance(
        "minimal", existingSecretCertificateKey="chain.pem", existingSecretPrivateKeyKey="signer.key"
    )
    for where, spec in _worker_pods(rendered):
        files = _signing_files(where, spec)
        assert {setting: key for setting, (key, _) in files.items()} == {
            CERTIFICATE: "chain.pem",
            PRIVATE_KEY: "signer.key",
        }


def test_the_rendered_paths_are_what_the_worker_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render_ci("production")
    where, spec = _worker_pods(rendered)[0]
    files = _signing_files(where, spec)
    for setting, (_, path) in files.items():
        monkeypatch.setenv(setting, path)
    config_map = rendered.get("ConfigMap", "rushes")["data"]
    monkeypatch.setenv(TIMESTAMP, config_map[TIMESTAMP])
    provenance = Settings().provenance
    assert provenance.certificate_file == Path(files[CERTIFICATE][1])
    assert provenance.private_key_file == Path(files[PRIVATE_KEY][1])
    assert provenance.timestamp_url == ci_values("production")["provenance"]["timestampUrl"]


@pytest.mark.parametrize("name", CI_NAMES)
def test_only_worker_pods_get_the_signing_key(name: str) -> None:
    rendered = _with_provenance(name)
    workers = {where for where, _ in _worker_pods(rendered)}
    for where, _, spec in pod_specs(rendered):
        if where in workers:
            continue
        assert "provenance" not in {volume["name"] for volume in spec.get("volumes", [])}, where
        for container in containers(spec):
            assert not {CERTIFICATE, PRIVATE_KEY} & set(env_of(container)), where


def test_without_the_secret_no_signing_settings_and_notes_warn() -> None:
    rendered = render_ci("minimal")
    assert TIMESTAMP not in rendered.get("ConfigMap", "ci-rushes")["data"]
    for where, _, spec in pod_specs(rendered):
        assert "provenance" not in {volume["name"] for volume in spec.get("volumes", [])}, where
        for container in containers(spec):
            assert not [name for name in env_of(container) if name.startswith("RUSHES_PROVENANCE__")], where
    assert WARNING in rendered.notes
    assert "a different CA per pod and per restart" in rendered.notes
    assert 'docs/deploy.md, "Content credentials"' in rendered.notes


def test_notes_do_not_warn_with_the_secret_or_without_pools_that_render() -> None:
    assert WARNING not in render_ci("production").notes
    train_only = {**ci_values("minimal"), "workers": {"pools": [{"name": "train", "roles": ["train"]}]}}
    assert WARNING not in render(train_only).notes


def test_the_timestamp_url_is_in_the_config_map_when_set() -> None:
    rendered = _with_provenance("minimal", timestampUrl="https://tsa.example.com/")
    assert rendered.get("ConfigMap", "ci-rushes")["data"][TIMESTAMP] == "https://tsa.example.com/"


def test_the_secret_needs_an_fs_group_to_be_readable() -> None:
    values = {**ci_values("minimal"), "provenance": {"existingSecret": SIGNER}}
    values["podSecurityContext"] = {"fsGroup": None}
    with pytest.raises(helm.HelmRenderError, match="VALUES VALIDATION") as failure:
        render(values)
    assert "provenance.existingSecret mounts the signing key readable by the pod's fsGroup only" in str(
        failure.value
    )


@pytest.mark.parametrize(
    "provenance",
    [
        {"existingSecret": SIGNER, "timestampUrl": "http://timestamp.example.com/rfc3161"},
        {"existingSecret": "", "timestampUrl": ""},
        {"existingSecretCertificateKey": "chain.pem", "existingSecretPrivateKeyKey": "key.pem"},
    ],
)
def test_schema_accepts_provenance_values(provenance: dict[str, str]) -> None:
    jsonschema.validate({"provenance": provenance}, SCHEMA)
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({"provenance": provenance})


@pytest.mark.parametrize(
    ("provenance", "where"),
    [
        ({"existingSecret": "Rushes_C2PA"}, "/provenance/existingSecret"),
        ({"existingSecretCertificateKey": ""}, "/provenance/existingSecretCertificateKey"),
        ({"existingSecretPrivateKeyKey": "tls key"}, "/provenance/existingSecretPrivateKeyKey"),
        ({"timestampUrl": "timestamp.example.com"}, "/provenance/timestampUrl"),
        ({"certificate": "-----BEGIN CERTIFICATE-----"}, "/provenance"),
    ],
)
def test_schema_refuses_provenance_values_that_cannot_work(provenance: dict[str, str], where: str) -> None:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    paths = [
        "/" + "/".join(str(part) for part in error.absolute_path)
        for error in validator.iter_errors({"provenance": provenance})
    ]
    assert where in paths, paths
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"provenance": provenance})
