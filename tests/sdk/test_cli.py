"""The ``rushes`` command line, run in-process against the live server."""

from __future__ import annotations

import io
import json
import stat
import uuid
from pathlib import Path

import pytest
import rushes
from rushes.cli import main

from tests.conftest import free_port
from tests.helpers import PASSWORD
from tests.sdk.conftest import LiveServer, run


def test_login_stores_the_key_privately_and_commands_use_it(
    cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "me")
    assert code == 1 and err.strip() == (
        "rushes: error: not signed in: run `rushes signup` (new here) or `rushes login`,"
        " or set RUSHES_API_KEY"
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
    assert err.startswith("rushes: error: 401 The API key rsh_nope_... was not accepted by 127.0.0.1:")
    assert err.count("\n") == 1


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
    header, row = out.splitlines()
    assert code == 0 and header.split() == ["id", "file", "kind", "size", "rights", "created", "(UTC)"]
    assert row.split()[:6] == [
        asset_id,
        "plate.png",
        "still",
        f"{noise_png.stat().st_size / 1024:.1f}",
        "KiB",
        "licensed",
    ]
    code, out, _ = run(capsys, "assets", "get", asset_id, *key)
    assert code == 0 and "resolution: 400x400 pixels" in out.splitlines() and "licence: L-1" in out

    code, out, _ = run(capsys, "datasets", "create", "Brand look", "--description", "spring", *key)
    dataset_id = out.strip()
    code, out, err = run(
        capsys, "datasets", "add-version", dataset_id, f"{asset_id}=a plate", "--trigger-word", "bl", *key
    )
    assert code == 0 and out.startswith("version 1 "), err
    code, out, _ = run(capsys, "datasets", "versions", dataset_id, "--json", *key)
    (version,) = [json.loads(line) for line in out.splitlines()]
    assert version["items"] == [{"asset_id": asset_id, "caption": "a plate"}]
    code, out, _ = run(capsys, "datasets", "versions", dataset_id, *key)
    header, row = out.splitlines()
    assert header.split()[:5] == ["version", "id", "clips", "trigger", "word"]
    assert row.split()[:5] == ["1", version["id"], "1", "bl", "no"]
    code, out, _ = run(capsys, "datasets", "list", *key)
    assert out.splitlines()[1].split()[:4] == [dataset_id, "Brand", "look", "spring"]

    # The asset is used by a version: one clear line, with the request id, and a failing status.
    code, out, err = run(capsys, "assets", "delete", asset_id, *key)
    assert code == 1 and err.startswith("rushes: error: 409 This asset is part of a dataset version")
    assert "request id" in err and err.count("\n") == 1


def test_upload_checks_its_arguments(
    cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "upload", "x.mp4", "--rights", "licensed", "--api-key", api_key)
    assert code == 1 and "--licence-ref" in err
    code, _, err = run(capsys, "upload", "missing.mp4", "--rights", "owned", "--api-key", api_key)
    assert code == 1 and "not a file" in err
    nameless = tmp_path / "take-3"
    nameless.write_bytes(b"\0" * 64)
    code, _, err = run(capsys, "upload", str(nameless), "--rights", "owned", "--api-key", api_key)
    assert code == 1 and err == (
        "rushes: error: Cannot tell the media type of take-3 from its name: give it, e.g. video/mp4"
        " (--content-type on the command line, content_type= in the SDK).\n"
    )
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
    assert code == 0 and len(out.splitlines()) == 2
    assert out.splitlines()[0].split() == ["id", "name", "status", "members", "assets", "storage"]
    code, out, _ = run(capsys, "admin", "users", "--json", "--api-key", admin_key)
    assert code == 0 and any(json.loads(line)["is_platform_admin"] for line in out.splitlines())

    # A tenant's share of the GPUs: shown, then changed a part at a time.
    tenant_id = json.loads(run(capsys, "me", "--json", "--api-key", api_key)[1])["tenant"]["id"]
    code, out, _ = run(capsys, "admin", "tenants", "compute", tenant_id, "--api-key", admin_key)
    assert code == 0 and "concurrency cap     none" in out
    code, out, _ = run(
        capsys,
        "admin",
        "tenants",
        "compute",
        tenant_id,
        "--weight",
        "2.5",
        "--cap",
        "1",
        "--json",
        "--api-key",
        admin_key,
    )
    assert code == 0 and json.loads(out) | {"recent_gpu_seconds": 0} == {
        "tenant_id": tenant_id,
        "weight": 2.5,
        "concurrency_cap": 1,
        "recent_gpu_seconds": 0,
    }
    code, out, _ = run(capsys, "admin", "tenants", "compute", tenant_id, "--no-cap", "--api-key", admin_key)
    assert code == 0 and "weight              2.5" in out and "concurrency cap     none" in out
    code, out, _ = run(capsys, "admin", "tenants", "billing", tenant_id, "--api-key", admin_key)
    assert code == 0 and "billing            off on this server" in out


def _email() -> str:
    return f"new-{uuid.uuid4().hex[:8]}@example.com"


def test_a_new_user_signs_up_makes_a_key_and_revokes_it(
    cli_env: Path,
    live_server: LiveServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = _email()
    monkeypatch.setenv("RUSHES_PASSWORD", "too short")
    code, out, err = run(capsys, "signup", "--email", email, "--tenant", "Night Unit")
    assert code == 1 and out == "" and "password" in err and not cli_env.exists()

    # No RUSHES_PASSWORD and no terminal: the password is the first line of stdin.
    monkeypatch.delenv("RUSHES_PASSWORD")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = run(capsys, "signup", "--email", email, "--tenant", "Night Unit")
    assert code == 0, err
    assert out.startswith(f"Signed up as {email}, owner of tenant Night Unit (")
    assert "rushes keys create" in out
    # The session is kept privately, with the server it belongs to; no key yet.
    stored = json.loads(cli_env.read_text())
    assert stat.S_IMODE(cli_env.stat().st_mode) == 0o600
    assert stored["base_url"] == live_server.url and "api_key" not in stored and stored["session"]

    monkeypatch.setenv("RUSHES_PASSWORD", PASSWORD)
    code, _, err = run(capsys, "signup", "--email", email, "--tenant", "Again")
    assert code == 1 and err.startswith("rushes: error: 409 ") and "sign in instead" in err

    # The session makes the first key: the key alone on stdout, how to use it on stderr.
    code, out, err = run(capsys, "keys", "create", "--name", "laptop")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("rsh_") and out.count("\n") == 1
    assert "only time" in err and "export RUSHES_API_KEY=" in err and key not in err

    code, out, _ = run(capsys, "me", "--field", "email", "--api-key", key)
    assert (code, out) == (0, f"{email}\n")
    code, out, _ = run(capsys, "keys", "list", "--api-key", key)
    header, row = out.splitlines()
    assert header.split() == [
        "id",
        "name",
        "prefix",
        "created",
        "(UTC)",
        "last",
        "used",
        "(UTC)",
        "revoked",
        "(UTC)",
    ]
    key_id = row.split()[0]
    assert row.split()[1:3] == ["laptop", key.split("_")[1]]
    code, out, _ = run(capsys, "keys", "list", "--json", "--api-key", key)
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert listed["id"] == key_id and listed["last_used_at"] is not None and "key" not in listed

    code, out, _ = run(capsys, "keys", "revoke", key_id)
    assert (code, out) == (0, f"revoked {key_id}\n")
    code, out, err = run(capsys, "me", "--api-key", key)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"rushes: error: 401 The API key rsh_{key.split('_')[1]}_... was not accepted by")
    assert key not in err  # the secret is never shown back

    # Logging out ends the session on the server: the cookie no longer works.
    session = json.loads(cli_env.read_text())["session"]
    code, out, _ = run(capsys, "logout")
    assert code == 0 and not cli_env.exists()
    with pytest.raises(rushes.AuthenticationError):
        rushes.Client(session=session, base_url=live_server.url).me.get()


def test_an_invitation_is_answered_with_its_link(
    cli_env: Path, live_server: LiveServer, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    email = _email()
    session = rushes.sign_up(email=email, password=PASSWORD, tenant_name="Invitee", base_url=live_server.url)
    with rushes.Client(session=session.cookies, base_url=live_server.url) as by_session:
        invitee_key = by_session.api_keys.create(name="cli").key
    with rushes.Client(api_key=api_key, base_url=live_server.url) as owner:
        declined = owner.tenant.members.invite(email=email)
        code, out, _ = run(capsys, "invitations", "decline", declined.token, "--api-key", invitee_key)
        assert (code, out) == (0, "declined\n")
        accepted = owner.tenant.members.invite(email=email, role="owner")
        tenant = owner.tenant.get()
    code, out, err = run(capsys, "invitations", "accept", declined.token, "--api-key", invitee_key)
    assert code == 1 and err.startswith("rushes: error: 404 ")
    link = live_server.url + accepted.link
    code, out, err = run(capsys, "invitations", "accept", link, "--api-key", invitee_key)
    assert code == 0, err
    assert out == f"joined {tenant.name} ({tenant.id}) as owner\n"


def test_login_with_a_password(
    cli_env: Path,
    live_server: LiveServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = _email()
    rushes.sign_up(email=email, password=PASSWORD, tenant_name="Grade", base_url=live_server.url)
    monkeypatch.setenv("RUSHES_PASSWORD", "not the password")
    code, out, err = run(capsys, "login", "--email", email)
    assert code == 1 and out == "" and err.startswith("rushes: error: 401 ") and not cli_env.exists()

    monkeypatch.setenv("RUSHES_PASSWORD", PASSWORD)
    code, out, err = run(capsys, "login", "--email", email, "--json")
    assert code == 0, err
    assert json.loads(out)["tenant"]["name"] == "Grade"
    code, out, _ = run(capsys, "me")
    assert code == 0 and out.startswith(f"{email}\ntenant: Grade (")


def test_version_billing_bases_and_fine_tunes(
    cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out == f"rushes {rushes.__version__}\n"

    key = ("--api-key", api_key)
    code, out, _ = run(capsys, "billing", *key)
    assert code == 0 and out.splitlines()[:3] == [
        "plan          default",
        "status        active",
        "billing       off on this server",
    ]
    code, out, _ = run(capsys, "billing", "--json", *key)
    assert json.loads(out) | {"plan_id": None} == {
        "enabled": False,
        "status": "active",
        "has_customer": False,
        "plan": "default",
        "plan_id": None,
        "subscription_status": None,
    }
    code, out, err = run(capsys, "billing", "portal", *key)
    assert code == 1 and out == "" and "409 Billing is not enabled on this server." in err

    code, out, _ = run(capsys, "bases", *key)
    assert out.splitlines()[0].split() == ["id", "family", "parameters", "(millions)"]
    assert out.splitlines()[1].split()[:2] == ["tiny", "wan2.1"]
    assert run(capsys, "bases", "--field", "id", *key)[1] == "tiny\n"

    assert run(capsys, "fine-tunes", *key)[1] == "no fine-tunes\n"
    code, _, err = run(capsys, "fine-tunes", "get", str(uuid.uuid4()), *key)
    assert code == 1 and "404" in err


def test_a_refused_connection_names_the_host_and_port(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    code, out, err = run(capsys, "me", "--api-key", "rsh_a_b", "--base-url", f"http://127.0.0.1:{port}")
    assert code == 1 and out == ""
    assert err.startswith(f"rushes: error: Could not connect to the Rushes API at 127.0.0.1:{port}: ")
    assert "refused" in err and "make serve" in err and err.count("\n") == 1


def test_field_names_a_missing_field(cli_env: Path, api_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "me", "--field", "nope", "--api-key", api_key)
    assert code == 1 and out == "" and "no field 'nope' in the result; its fields: user_id, email" in err
    code, out, _ = run(capsys, "me", "--field", "tenant.name", "--api-key", api_key)
    assert (code, out) == (0, "Studio\n")
