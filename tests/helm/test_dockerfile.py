"""The Dockerfile, read statically (no Docker engine here): its targets, what they install, who runs them."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
TORCH_STACK = ("torch", "diffusers", "peft", "bitsandbytes", "transformers", "[worker]")
BUILD_TOOLS = ("build-essential", "gcc", "g++", "clang", "make ", "cmake", "python3-dev")


@dataclass
class Stage:
    name: str
    base: str  # another stage's name, or an image
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, value)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def _stages() -> dict[str, Stage]:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            found = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", value, flags=re.IGNORECASE)
            assert found, f"cannot read FROM {value}"
            current = Stage(name=found.group(2) or f"stage{len(stages)}", base=found.group(1))
            stages[current.name] = current
        elif current is None:
            assert instruction in ("COMMENT", "ARG"), f"{instruction} before any FROM"
        elif instruction != "COMMENT":
            current.instructions.append((instruction, value))
    return stages


STAGES = _stages()


def _chain(target: str) -> list[Stage]:
    """The stages a target's final filesystem is built from: itself and its FROM ancestors."""
    chain = [STAGES[target]]
    while chain[-1].base in STAGES:
        chain.append(STAGES[chain[-1].base])
    return chain


def _closure(target: str) -> set[str]:
    """Every stage a target's build runs: the FROM chain and the stages it copies from."""
    seen: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        stage = STAGES[name]
        if stage.base in STAGES:
            todo.append(stage.base)
        for copy in stage.values("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            if source and source.group(1) in STAGES:
                todo.append(source.group(1))
    return seen


def _effective(target: str, instruction: str) -> str:
    """The last value of an instruction along a target's chain (USER, CMD, ENTRYPOINT)."""
    for stage in _chain(target):
        if stage.values(instruction):
            return stage.values(instruction)[-1]
    raise AssertionError(f"{target} sets no {instruction}")


def test_the_dockerfile_has_the_two_targets() -> None:
    assert {"api", "worker"} <= STAGES.keys()


@pytest.mark.parametrize("target", ["api", "worker"])
def test_final_images_run_as_a_numeric_non_root_user(target: str) -> None:
    user = _effective(target, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), f"{target}: USER {user} is not numeric, so runAsNonRoot cannot check it"
    assert int(uid) != 0
    # The chart's securityContext runs the same user.
    assert uid == "10001"


@pytest.mark.parametrize("target", ["api", "worker"])
def test_final_images_hold_no_build_tools(target: str) -> None:
    for stage in _chain(target):
        for run in stage.values("RUN"):
            assert not any(tool in run for tool in BUILD_TOOLS), f"{stage.name} installs build tools: {run}"
            assert "pip install" not in run, f"{stage.name} installs packages in a final stage: {run}"
        for copy in stage.values("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            if source:
                assert copy.split()[-2:] == ["/opt/venv", "/opt/venv"], f"{stage.name}: {copy}"


def test_the_api_image_installs_no_torch_stack() -> None:
    closure = _closure("api")
    assert "builder" in closure
    for name in closure:
        for instruction, value in STAGES[name].instructions:
            if instruction in ("RUN", "ARG", "ENV"):
                lowered = value.lower()
                assert not any(package in lowered for package in TORCH_STACK), (
                    f"{name}: {instruction} {value}"
                )
    installs = [run for name in closure for run in STAGES[name].values("RUN") if "pip install" in run]
    assert any(re.search(r"pip install \.(\s|$)", run) for run in installs), installs


def test_the_worker_image_installs_the_worker_extra_with_pinned_torch() -> None:
    runs = [run for name in _closure("worker") for run in STAGES[name].values("RUN")]
    assert any('pip install ".[worker]"' in run for run in runs), runs
    args = [value for name in _closure("worker") for value in STAGES[name].values("ARG")]
    assert "TORCH_VERSION=2.13.0" in args


def test_images_start_as_the_chart_expects() -> None:
    assert json.loads(_effective("api", "ENTRYPOINT")) == ["rushes-server"]
    assert json.loads(_effective("api", "CMD")) == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000" in STAGES["api"].values("EXPOSE")
    assert json.loads(_effective("worker", "CMD"))[0] == "worker"
    for target in ("api", "worker"):
        env = " ".join(value for stage in _chain(target) for value in stage.values("ENV"))
        assert "RUSHES_DATA_DIR=/data" in env


@pytest.mark.parametrize("target", ["api", "worker"])
def test_images_carry_oci_labels_with_the_version(target: str) -> None:
    labels = " ".join(value for stage in _chain(target) for value in stage.values("LABEL"))
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert "org.opencontainers.image.title=" in labels
    labelled = next(
        stage
        for stage in _chain(target)
        if "org.opencontainers.image.version" in " ".join(stage.values("LABEL"))
    )
    assert any(arg.split("=")[0] == "VERSION" for arg in labelled.values("ARG")), (
        "VERSION is not an ARG of that stage"
    )


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, `!` re-includes; a pattern covers what is under it."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(prefix, pattern.removeprefix("**/"))
            for prefix in prefixes
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_out_local_state_and_keeps_in_the_packages() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for kept in (
        "pyproject.toml",
        "README.md",
        "service/app.py",
        "trainer/__init__.py",
        "web/static/app.css",
    ):
        assert not _ignored(kept, patterns), kept
    for left_out in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "helm/rushes/Chart.yaml",
        "service/__pycache__/app.cpython-312.pyc",
        "docs/architecture.md",
        "rushes_server.egg-info/PKG-INFO",
    ):
        assert _ignored(left_out, patterns), left_out
