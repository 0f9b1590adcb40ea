"""The ``rushes`` command line, run in-process against the live server."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from rushes.cli import main

from tests.sdk.conftest import LiveServer, run


def test_login_stores_the_key_privately_and_commands_use_it(
    cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "me")
    assert (
        code == 1 and err.strip() == "rushes: error: not logged in: run `rushes login`, or set RUSHES_API_KEY"
    )

    monkeypatch.setattr(
        "sys.stdin", io.StringIO(api_key + "\n")
    )  # not a terminal: the key is read from stdin
    code, out, _ = run(capsys, "login")
    assert code == 0 and "Logged in as studio-" in out
    assert stat.S_IMODE(cli_env.stat().st_mode) == 0o600
    assert json.loads(cli_env.read_text())["api_key"] == api_key

    code, out, _ = run(capsys, "me", "--json")
    assert code == 0 and json.loads(out)["role"] == "owner"

    code, out, _ = run(capsys, "logout")
    assert code == 0 and not cli_env.exists()


def test_login_refuses_a_bad_key(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "login", "--api-key", "rsh_nope_nope")
    assert code == 1 and out == "" and not cli_env.exists()
    assert err.startswith("rushes: error: that API key was refused") and err.count("\n") == 1


def test_upload_assets_and_datasets(
    cli_env: Path, api_key: str, noise_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ("--api-key", api_key)
    code, out, err = run(
        capsys, "upload", str(noise_png), "--rights", "licensed", "--licence-ref", "L-1", *key
    )
    assert code == 0, err
    asset_id = out.strip()

    code, out, _ = run(capsys, "assets", "list", *key)
    assert code == 0 and out.split("\t")[:2] == [asset_id, "plate.png"]

    code, out, _ = run(capsys, "datasets", "create", "Brand look", "--description", "spring", *key)
    dataset_id = out.strip()
    code, out, err = run(
        capsys, "datasets", "add-version", dataset_id, f"{asset_id}=a plate", "--trigger-word", "bl", *key
    )
    assert code == 0 and out.startswith("version 1 "), err
    code, out, _ = run(capsys, "datasets", "versions", dataset_id, "--json", *key)
    (version,) = [json.loads(line) for line in out.splitlines()]
    assert version["items"] == [{"asset_id": asset_id, "caption": "a plate"}]
    code, out, _ = run(capsys, "datasets", "list", *key)
    assert out.startswith(f"{dataset_id}\tBrand look\tspring\t")

    # The asset is used by a version: one clear line, with the request id, and a failing status.
    code, out, err = run(capsys, "assets", "delete", asset_id, *key)
    assert code == 1 and err.startswith("rushes: error: 409 This asset is part of a dataset version")
    assert "request id" in err and err.count("\n") == 1


def test_upload_checks_its_arguments(cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "upload", "x.mp4", "--rights", "licensed", "--api-key", api_key)
    assert code == 1 and "--licence-ref" in err
    code, _, err = run(capsys, "upload", "missing.mp4", "--rights", "owned", "--api-key", api_key)
    assert code == 1 and "not a file" in err
    with pytest.raises(SystemExit) as usage:
        main(["upload", "x.mp4", "--rights", "stolen"])
    assert usage.value.code == 2


def test_admin_commands(
    cli_env: Path, live_server: LiveServer, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "admin", "tenants", "--api-key", api_key)
    assert code == 1 and "403 Only platform admins may do this." in err
    admin_key = live_server.admin_api_key()
    code, out, _ = run(capsys, "admin", "tenants", "--limit", "1", "--api-key", admin_key)
    assert code == 0 and len(out.splitlines()) == 1
    code, out, _ = run(capsys, "admin", "users", "--json", "--api-key", admin_key)
    assert code == 0 and any(json.loads(line)["is_platform_admin"] for line in out.splitlines())
