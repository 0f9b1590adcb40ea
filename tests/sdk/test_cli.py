"""The ``rushes`` command line, run in-process against the live server."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import rushes
from rushes.cli import main

from core.work.status import WorkStatus
from service.db.engine import create_engine, session_factory
from service.db.tenancy import set_tenant
from service.webhooks.models import WebhookAttempt, WebhookDelivery
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


# A public address literal: accepted without a name lookup, and never called here (no dispatcher runs).
HOOK_URL = "https://93.184.215.14/rushes"


def add_failed_delivery(server: LiveServer, tenant_id: str, webhook_id: str) -> str:
    """A delivery that failed after one attempt, as the dispatcher leaves one."""

    async def write() -> str:
        engine = create_engine(server.settings.database_url)
        async with session_factory(engine)() as session:
            set_tenant(session, UUID(tenant_id))
            now = datetime.now(UTC)
            delivery = WebhookDelivery(
                endpoint_id=UUID(webhook_id),
                event_id=uuid.uuid4(),
                event_type="fine_tune.succeeded",
                payload={"type": "fine_tune.succeeded"},
                status=WorkStatus.FAILED,
                attempts=1,
                max_attempts=1,
                queued_at=now,
                not_before=now,
                finished_at=now,
                last_attempt_at=now,
                last_status_code=503,
                last_error="Service Unavailable",
                last_duration_ms=1234,
            )
            session.add(delivery)
            await session.flush()
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id, number=1, url=HOOK_URL, status_code=503, duration_ms=1234
                )
            )
            await session.commit()
            delivery_id = str(delivery.id)
        await engine.dispose()
        return delivery_id

    return asyncio.run(write())


def test_webhook_commands(
    cli_env: Path, live_server: LiveServer, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ("--api-key", api_key)
    assert run(capsys, "webhooks", *key) == (0, "no webhook endpoints\n", "")

    # The signing secret alone on stdout, shown this once; what to do with it on stderr.
    code, out, err = run(
        capsys,
        "webhooks",
        "create",
        HOOK_URL,
        "--description",
        "ops",
        "--event",
        "fine_tune.failed",
        "--event",
        "fine_tune.succeeded",
        *key,
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("whsec_") and out.count("\n") == 1
    assert "only time its signing secret is shown" in err and secret not in err
    (webhook,) = [
        json.loads(line) for line in run(capsys, "webhooks", "list", "--json", *key)[1].splitlines()
    ]
    assert "secret" not in webhook and webhook["event_types"] == ["fine_tune.succeeded", "fine_tune.failed"]
    webhook_id = webhook["id"]

    code, out, _ = run(capsys, "webhooks", *key)
    header, row = out.splitlines()
    assert header.split() == ["id", "enabled", "event", "types", "url", "description", "created", "(UTC)"]
    assert row.split()[:5] == [webhook_id, "yes", "2", HOOK_URL, "ops"]
    code, out, _ = run(capsys, "webhooks", "get", webhook_id, *key)
    assert code == 0 and out.splitlines()[:5] == [
        webhook_id,
        f"url             {HOOK_URL}",
        "description     ops",
        "enabled         yes",
        "event types     fine_tune.succeeded, fine_tune.failed",
    ]
    assert "signing secret  version 1, never rotated" in out

    code, out, err = run(capsys, "webhooks", "update", webhook_id, *key)
    assert (code, out) == (1, "") and err == (
        "rushes: error: nothing to change: give --url, --description, --event, --enable or --disable\n"
    )
    code, out, err = run(
        capsys, "webhooks", "update", webhook_id, "--disable", "--event", "quota.warning", *key
    )
    assert code == 0, err
    assert "enabled         no" in out and "event types     quota.warning" in out
    code, out, err = run(capsys, "webhooks", "update", webhook_id, "--event", "fine_tune.exploded", *key)
    assert code == 1 and out == "" and err.startswith("rushes: error: 400 ") and "fine_tune.exploded" in err

    code, out, err = run(capsys, "webhooks", "rotate-secret", webhook_id, *key)
    assert code == 0 and out.strip().startswith("whsec_") and out.strip() != secret
    assert "version 2" in err and "previous secret" in err

    # The delivery log: a failed delivery, in a table with units, then sent again.
    assert run(capsys, "webhooks", "deliveries", webhook_id, *key)[1] == "no deliveries\n"
    tenant_id = json.loads(run(capsys, "me", "--json", *key)[1])["tenant"]["id"]
    delivery_id = add_failed_delivery(live_server, tenant_id, webhook_id)
    code, out, _ = run(capsys, "webhooks", "deliveries", webhook_id, "--status", "failed", *key)
    header, row = out.splitlines()
    assert header.split()[:9] == [
        "id",
        "event",
        "status",
        "attempts",
        "last",
        "answer",
        "took",
        "(ms)",
        "created",
    ]
    assert row.split()[:7] == [delivery_id, "fine_tune.succeeded", "failed", "1", "HTTP", "503", "1,234"]
    # Created (a day and a time), no next try, and the last error in the receiver's words.
    assert row.split()[9:] == ["-", "Service", "Unavailable"]
    assert (
        run(capsys, "webhooks", "deliveries", webhook_id, "--status", "pending", *key)[1] == "no deliveries\n"
    )
    code, out, _ = run(capsys, "webhooks", "redeliver", webhook_id, delivery_id, *key)
    assert (code, out) == (
        0,
        f"delivery {delivery_id} (fine_tune.succeeded) queued to be sent again,"
        " with a fresh set of attempts\n",
    )
    code, out, err = run(capsys, "webhooks", "redeliver", webhook_id, delivery_id, *key)
    assert (
        code == 1
        and out == ""
        and err.startswith("rushes: error: 409 This delivery is still being attempted")
    )

    # Another tenant sees none of it.
    other = ("--api-key", live_server.new_api_key("Other"))
    code, out, err = run(capsys, "webhooks", "get", webhook_id, *other)
    assert code == 1 and err.startswith("rushes: error: 404 ")

    assert run(capsys, "webhooks", "delete", webhook_id, *key) == (0, f"deleted {webhook_id}\n", "")
    code, _, err = run(capsys, "webhooks", "deliveries", webhook_id, *key)
    assert code == 1 and err.startswith("rushes: error: 404 ")


def test_guardrail_commands(
    cli_env: Path, api_key: str, model_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ("--api-key", api_key)
    code, out, _ = run(capsys, "models", "guardrails", "get", model_id, *key)
    assert code == 0 and out.splitlines() == [
        "blocked terms  none",
        "max width      the platform's own",
        "max height     the platform's own",
        "max frames     the platform's own",
        "max steps      the platform's own",
        "memorisation   record: a video that nearly copies the training footage is kept,"
        " the verdict recorded",
    ]
    code, out, err = run(capsys, "models", "guardrails", "set", model_id, *key)
    assert code == 1 and out == "" and err.startswith("rushes: error: nothing to change: give --block")

    code, out, err = run(
        capsys,
        "models",
        "guardrails",
        "set",
        model_id,
        "--block",
        "Acme",
        "--block",
        "rival brand",
        "--max-width",
        "1280",
        "--memorisation",
        "block",
        *key,
    )
    assert code == 0, err
    assert out.splitlines()[:3] == [
        "blocked terms  Acme, rival brand",
        "max width      1,280 pixels",
        "max height     the platform's own",
    ]
    assert (
        out.splitlines()[-1]
        == "memorisation   block: a video that nearly copies the training footage is withheld"
    )

    # What is not named keeps its value; a term is unblocked whatever its case; none lifts a limit.
    code, out, err = run(
        capsys,
        "models",
        "guardrails",
        "set",
        model_id,
        "--unblock",
        "ACME",
        "--max-width",
        "none",
        "--max-frames",
        "49",
        "--json",
        *key,
    )
    assert code == 0, err
    assert json.loads(out) == {
        "blocked_terms": ["rival brand"],
        "max_width": None,
        "max_height": None,
        "max_frames": 49,
        "max_steps": None,
        "memorisation_policy": "block",
    }
    code, out, err = run(capsys, "models", "guardrails", "set", model_id, "--unblock", "nope", *key)
    assert (
        code == 1
        and out == ""
        and err
        == ("rushes: error: 'nope' is not a blocked term of this model; its blocked terms: rival brand\n")
    )
    with pytest.raises(SystemExit) as usage:
        main(["models", "guardrails", "set", model_id, "--max-steps", "0"])
    assert (
        usage.value.code == 2
        and "expected a whole number of at least 1, or 'none'" in capsys.readouterr().err
    )

    # A model that is not there: the server's answer, in words, with a failing status.
    code, out, err = run(capsys, "models", "guardrails", "get", str(uuid.uuid4()), *key)
    assert code == 1 and out == "" and err.startswith("rushes: error: 404 ")
