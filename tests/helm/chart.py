"""Rendering helm/rushes offline with Helm's own library (helm-python-sdk), and reading the result.

No helm binary, no cluster: ``lookup`` finds nothing, so generated secrets are new on
every render, as on a first install.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "rushes"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CI_NAMES = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]
RELEASE = "ci"
NAMESPACE = "rushes"

Obj = dict[str, Any]


def load_yaml(path: Path) -> Obj:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def ci_values(name: str) -> Obj:
    return load_yaml(CHART / "ci" / f"{name}-values.yaml")


def chart_kube_version() -> str:
    """The oldest Kubernetes the chart supports, from Chart.yaml's kubeVersion (">=1.27.0-0")."""
    found = re.search(r">=\s*v?(\d+\.\d+)", str(load_yaml(CHART / "Chart.yaml")["kubeVersion"]))
    assert found, "Chart.yaml names no minimum kubeVersion"
    return found.group(1)


@dataclass(frozen=True)
class Rendered:
    values: Obj  # what the values file says
    merged: Obj  # the chart's defaults with the file's values over them
    objects: list[Obj]
    notes: str

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] in kinds]

    def get(self, kind: str, name: str) -> Obj:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def secret_data(self, name: str) -> dict[str, str]:
        data: dict[str, str] = self.get("Secret", name).get("data") or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}


def render(values: Obj, *, is_upgrade: bool = False) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        merged = chart.merge_values(values)
        manifests = chart.render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=not is_upgrade, is_upgrade=is_upgrade
        )
    objects: list[Obj] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                assert isinstance(document, dict), f"{path} renders a document that is not a mapping"
                objects.append(document)
    return Rendered(values=values, merged=merged, objects=objects, notes=notes)


@functools.cache
def render_ci(name: str) -> Rendered:
    return render(ci_values(name))


def pool_name(rendered: Rendered, pool: str) -> str:
    fullname = rendered.merged.get("fullnameOverride") or f"{RELEASE}-rushes"
    return f"{fullname}-worker-{pool}"


def pools(rendered: Rendered) -> list[Obj]:
    """The worker pools with their defaults filled in, as the chart does."""
    defaults: Obj = rendered.merged["workers"]["poolDefaults"]
    result = []
    for pool in rendered.merged["workers"]["pools"]:
        filled = {**defaults, **pool, "keda": {**defaults["keda"], **pool.get("keda", {})}}
        result.append(filled)
    return result


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, Obj, Obj]]:
    """(kind/name, pod template metadata, pod spec) of everything that makes pods."""
    for obj in rendered.objects:
        kind = obj["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            template = obj["spec"]["template"]
        elif kind == "ScaledJob":
            template = obj["spec"]["jobTargetRef"]["template"]
        else:
            continue
        yield f"{kind}/{obj['metadata']['name']}", template.get("metadata", {}), template["spec"]


def containers(pod_spec: Obj) -> list[Obj]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def env_of(container: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in container.get("env", [])}
