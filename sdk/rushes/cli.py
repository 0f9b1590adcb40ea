"""rushes: the command line for the Rushes API.

New here? `rushes signup` makes an account and signs in; `rushes keys create` then makes an
API key for scripts and the SDK (export it as RUSHES_API_KEY).

Credentials: --api-key, else RUSHES_API_KEY, else what `rushes login` or `rushes signup`
stored (an API key, or a signed-in session).
Server: --base-url, else RUSHES_BASE_URL, else the stored one, else http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any, cast

from rushes import types
from rushes._client import Client
from rushes._config import config_path, forget_config, load_config, save_config
from rushes._errors import APIError, APIStatusError, RushesError
from rushes._models import Model
from rushes._session import Session, log_in, sign_up
from rushes._version import __version__
from rushes.resources.admin import TenantStatus

Handler = Callable[[argparse.Namespace], int]
#: A table's column: the result's field, and its heading (with its unit, where it has one).
Columns = Sequence[tuple[str, str]]


# The name of the variable that holds the password, not a password.
PASSWORD_ENV = "RUSHES_PASSWORD"  # noqa: S105


def _client(args: argparse.Namespace, api_key: str | None = None) -> Client:
    stored = load_config()
    key = api_key or args.api_key or os.environ.get("RUSHES_API_KEY") or stored.get("api_key")
    session = None if key else stored.get("session")
    if not key and not session:
        raise RushesError(
            "not signed in: run `rushes signup` (new here) or `rushes login`, or set RUSHES_API_KEY"
        )
    base_url = args.base_url or os.environ.get("RUSHES_BASE_URL") or stored.get("base_url")
    return Client(api_key=key, session=session, base_url=base_url)


def _field(data: Any, path: str) -> Any:
    """``a.b`` of a JSON document, for ``--field``."""
    for name in path.split("."):
        if not isinstance(data, dict) or name not in data:
            known = ", ".join(data) if isinstance(data, dict) else "none"
            raise RushesError(f"no field {path!r} in the result; its fields: {known}")
        data = data[name]
    return data


def _show(args: argparse.Namespace, item: Model, text: str) -> None:
    """One result: ``text`` for a person, the whole document with ``--json``, one value with ``--field``."""
    if args.field:
        value = _field(item.to_dict(), args.field)
        print(json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else value))
    elif args.json:
        print(json.dumps(item.to_dict(), indent=2))
    else:
        print(text)


def _cell(value: Any, none: str) -> str:
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T" and value[4:5] == "-":
        return value[:19].replace("T", " ")  # ISO 8601, to the second (times are UTC)
    return str(value)


def _table(
    args: argparse.Namespace,
    rows: Iterable[Model],
    columns: Columns,
    none: str = "-",
    empty: str = "none",
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """Aligned columns under a header line (``(field, heading)`` pairs, a field's value shown by
    its entry in ``formats`` if it has one); JSON lines with ``--json``, one value per line with
    ``--field``."""
    documents = [row.to_dict() for row in rows]
    if args.field:
        for data in documents:
            print(_field(data, args.field))
        return
    if args.json:
        for data in documents:
            print(json.dumps(data))
        return
    if not documents:
        print(empty)
        return
    cells = [[heading for _, heading in columns]]
    shown = formats or {}
    cells += [
        [
            shown[name](data[name])
            if name in shown and data.get(name) is not None
            else _cell(data.get(name), none)
            for name, _ in columns
        ]
        for data in documents
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _password(confirm: bool) -> str:
    """The password from RUSHES_PASSWORD, else asked for on a terminal, else a line of stdin."""
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password (10 characters or more): ")
            if confirm and getpass.getpass("The same password again: ") != password:
                raise RushesError("the two passwords differ; nothing was done")
    if not password:
        raise RushesError(f"no password given: type it when asked, or set {PASSWORD_ENV}")
    return password


def _store_session(session: Session) -> Path:
    """Keep a signed-in session, replacing what was stored: later commands act with it."""
    return save_config({"session": session.cookies, "base_url": session.base_url})


def _emit_one(args: argparse.Namespace, item: Model, columns: Sequence[str], none: str = "") -> None:
    data = item.to_dict()
    _show(args, item, "\n".join(f"{c}: {none if data.get(c) is None else data.get(c)}" for c in columns))


def _listed(args: argparse.Namespace, pager: Iterable[Any]) -> Iterable[Any]:
    return islice(pager, args.limit) if args.limit else pager


# --- commands ---------------------------------------------------------------------------------


def _signup(args: argparse.Namespace) -> int:
    password = _password(confirm=True)
    base_url = args.base_url or os.environ.get("RUSHES_BASE_URL")
    session = sign_up(email=args.email, password=password, tenant_name=args.tenant, base_url=base_url)
    path = _store_session(session)
    me = session.me
    _show(
        args,
        me,
        f"Signed up as {me.email}, owner of tenant {me.tenant.name} ({me.tenant.id}).\n"
        f"Signed in to {session.base_url}; the session is stored in {path}.\n"
        "Next, make an API key for scripts and the SDK:\n"
        "  export RUSHES_API_KEY=$(rushes keys create --name laptop)",
    )
    return 0


def _login(args: argparse.Namespace) -> int:
    if args.email:
        return _login_with_password(args)
    key = args.api_key or os.environ.get("RUSHES_API_KEY")
    if not key:
        key = (
            getpass.getpass("API key (rsh_...): ").strip()
            if sys.stdin.isatty()
            else sys.stdin.readline().strip()
        )
    if not key:
        raise RushesError("no API key given")
    with _client(args, api_key=key) as client:
        me = client.me.get()  # a key the server refuses is never stored
        stored: dict[str, Any] = {"api_key": key}
        if args.base_url or os.environ.get("RUSHES_BASE_URL"):
            stored["base_url"] = client.base_url
    path = save_config(stored)
    print(f"Logged in as {me.email} (tenant {me.tenant.name}). Key stored in {path}")
    return 0


def _login_with_password(args: argparse.Namespace) -> int:
    base_url = args.base_url or os.environ.get("RUSHES_BASE_URL")
    session = log_in(
        email=args.email, password=_password(confirm=False), tenant_id=args.tenant_id, base_url=base_url
    )
    path = _store_session(session)
    me = session.me
    _show(
        args,
        me,
        f"Signed in to {session.base_url} as {me.email} (tenant {me.tenant.name}, {me.role}). "
        f"Session stored in {path}",
    )
    return 0


def _logout(args: argparse.Namespace) -> int:
    stored = load_config()
    if stored.get("session"):
        # End the session on the server too, so the stored cookie is worthless if it leaked.
        try:
            with Client(session=stored["session"], base_url=stored.get("base_url")) as client:
                client.auth.log_out()
        except APIError as exc:
            print(f"rushes: warning: the server did not end the session: {exc}", file=sys.stderr)
    print(f"Removed {config_path()}" if forget_config() else "Not logged in.")
    return 0


def _me(args: argparse.Namespace) -> int:
    with _client(args) as client:
        me = client.me.get()
    admin = " (platform admin)" if me.is_platform_admin else ""
    _show(args, me, f"{me.email}{admin}\ntenant: {me.tenant.name} ({me.tenant.id})\nrole: {me.role}")
    return 0


def _upload(args: argparse.Namespace) -> int:
    if args.rights == "licensed" and not args.licence_ref:
        raise RushesError("--rights licensed needs --licence-ref")
    if args.rights == "owned" and args.licence_ref:
        raise RushesError("--licence-ref applies only to --rights licensed")
    rights: types.Rights = (
        {"kind": "licensed", "licence_ref": args.licence_ref} if args.rights == "licensed" else "owned"
    )
    with _client(args) as client:
        asset = client.assets.upload(
            args.path,
            rights=rights,
            content_type=args.content_type,
            progress=not args.no_progress and sys.stderr.isatty(),
            concurrency=args.concurrency,
        )
    _show(args, asset, asset.id)
    return 0


ASSET_COLUMNS = (
    ("id", "id"),
    ("filename", "file"),
    ("kind", "kind"),
    ("size", "size"),
    ("rights", "rights"),
    ("created_at", "created (UTC)"),
)


def _assets_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(
            args,
            _listed(args, client.assets.list()),
            ASSET_COLUMNS,
            empty="no assets",
            formats={"size": _size},
        )
    return 0


def _media_lines(media: dict[str, Any]) -> list[str]:
    """What the server's probe found: picture size, frame rate, duration, frames, codec."""
    lines = []
    if media.get("width") and media.get("height"):
        lines.append(f"resolution: {media['width']}x{media['height']} pixels")
    if media.get("frame_rate"):
        lines.append(f"frame rate: {float(media['frame_rate']):g} fps")
    if media.get("duration_seconds") is not None:
        lines.append(f"duration: {float(media['duration_seconds']):.2f} s")
    if media.get("frame_count") is not None:
        lines.append(f"frames: {media['frame_count']}")
    if media.get("codec"):
        lines.append(f"codec: {media['codec']} in {media.get('container', '?')}")
    return lines


def _assets_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        asset = client.assets.get(args.asset_id)
    data = asset.to_dict()
    lines = [f"{heading}: {_cell(data.get(name), '-')}" for name, heading in ASSET_COLUMNS if name != "size"]
    lines.insert(2, f"size: {_size(asset.size)}")
    lines += [f"sha256: {asset.sha256}", f"content type: {asset.content_type}"]
    if asset.licence_ref:
        lines.append(f"licence: {asset.licence_ref}")
    _show(args, asset, "\n".join([*lines, *_media_lines(asset.media)]))
    return 0


def _assets_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for asset_id in args.asset_ids:
            client.assets.delete(asset_id)
            print(f"deleted {asset_id}")
    return 0


DATASET_COLUMNS = (
    ("id", "id"),
    ("name", "name"),
    ("description", "description"),
    ("created_at", "created (UTC)"),
)
VERSION_COLUMNS = (
    ("number", "version"),
    ("id", "id"),
    ("items", "clips"),
    ("trigger_word", "trigger word"),
    ("locked", "locked"),
    ("created_at", "created (UTC)"),
)


def _datasets_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        dataset = client.datasets.create(name=args.name, description=args.description)
    _show(args, dataset, dataset.id)
    return 0


def _datasets_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(args, _listed(args, client.datasets.list()), DATASET_COLUMNS, empty="no datasets")
    return 0


def _datasets_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        versions = _listed(args, client.datasets.versions.list(args.dataset_id))
        _table(
            args,
            versions,
            VERSION_COLUMNS,
            empty="no versions",
            formats={"items": lambda items: str(len(items))},
        )
    return 0


def _item(spec: str) -> dict[str, str]:
    asset_id, sep, caption = spec.partition("=")
    return {"asset_id": asset_id, "caption": caption} if sep else {"asset_id": asset_id}


def _datasets_add_version(args: argparse.Namespace) -> int:
    with _client(args) as client:
        version = client.datasets.versions.create(
            args.dataset_id, items=[_item(s) for s in args.items], trigger_word=args.trigger_word
        )
    _show(args, version, f"version {version.number} ({version.id})")
    return 0


HYPERPARAMETERS = ("steps", "learning_rate", "rank", "alpha", "height", "width", "frames", "seed")


def _train(args: argparse.Namespace) -> int:
    hyperparameters = {k: getattr(args, k) for k in HYPERPARAMETERS if getattr(args, k) is not None}
    with _client(args) as client:
        job = client.fine_tunes.create(
            dataset_id=args.dataset_id,
            dataset_version=args.version,
            base=args.base,
            preset=args.preset,
            hyperparameters=hyperparameters,
            model_id=args.model_id,
            model_name=args.model_name,
        )
        if args.wait:
            if not args.json and not args.field:
                print(job.id, flush=True)
            job = client.fine_tunes.wait(job.id, progress=not args.no_progress and sys.stderr.isatty())
    if args.wait:
        version = f" (model {job.model_id} version {job.model_version})" if job.model_version else ""
        _show(args, job, f"{job.status}{version}")
    else:
        _show(args, job, job.id)
    if args.wait and job.status != "succeeded":
        reason = f": {job.failure_reason}" if job.failure_reason else ""
        print(f"rushes: error: fine-tune {job.id} {job.status}{reason}", file=sys.stderr)
        return 1
    return 0


MODEL_COLUMNS = (
    ("id", "id"),
    ("name", "name"),
    ("base_id", "base"),
    ("version_count", "versions"),
    ("created_at", "created (UTC)"),
)
MODEL_VERSION_COLUMNS = (
    ("number", "version"),
    ("id", "id"),
    ("steps", "steps"),
    ("final_loss", "final loss"),
    ("adapter_bytes", "adapter"),
    ("created_at", "created (UTC)"),
)


def _models_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(args, _listed(args, client.models.list()), MODEL_COLUMNS, empty="no models")
    return 0


def _models_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        versions = _listed(args, client.models.versions.list(args.model_id))
        formats = {"adapter_bytes": _size, "final_loss": "{:.4f}".format}
        _table(args, versions, MODEL_VERSION_COLUMNS, empty="no versions yet", formats=formats)
    return 0


def _models_download(args: argparse.Namespace) -> int:
    output = args.output or f"model-v{args.number}.safetensors"
    with _client(args) as client:
        path = client.models.download_adapter(args.model_id, args.number, output)
    print(path)
    return 0


GENERATION_COLUMNS = (
    ("id", "id"),
    ("status", "status"),
    ("model_id", "model"),
    ("version", "version"),
    ("created_at", "created (UTC)"),
    ("prompt", "prompt"),
)


def _generate(args: argparse.Namespace) -> int:
    wait = args.wait or args.output is not None
    path = None
    with _client(args) as client:
        generation = client.generations.create(
            args.model_id,
            args.prompt,
            version=args.version,
            negative_prompt=args.negative_prompt,
            width=args.width,
            height=args.height,
            frames=args.frames,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            adapter_strength=args.strength,
        )
        if wait:
            if not args.json and not args.field:
                print(generation.id, flush=True)
            generation = client.generations.wait(
                generation, progress=not args.no_progress and sys.stderr.isatty()
            )
            if generation.status == "succeeded" and args.output is not None:
                path = client.generations.download(generation, args.output)
    _show(args, generation, str(path) if path is not None else generation.status if wait else generation.id)
    if wait and generation.status != "succeeded":
        reason = f": {generation.failure_reason}" if generation.failure_reason else ""
        print(f"rushes: error: generation {generation.id} {generation.status}{reason}", file=sys.stderr)
        return 1
    return 0


def _generations_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        generations = client.generations.list(status=args.status, model_id=args.model_id)
        _table(args, _listed(args, generations), GENERATION_COLUMNS, empty="no generations")
    return 0


def _generation_text(generation: types.Generation) -> str:
    reason = f": {generation.failure_reason}" if generation.failure_reason else ""
    return (
        f"{generation.id}: {generation.status}{reason}, step {generation.step} of {generation.steps},"
        f" {generation.width}x{generation.height} pixels, {generation.frames} frames, seed {generation.seed},"
        f" {generation.gpu_seconds:,.1f} GPU-seconds"
    )


def _generations_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        generation = client.generations.get(args.generation_id)
    _show(args, generation, _generation_text(generation))
    return 0


def _generations_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        generation = client.generations.cancel(args.generation_id)
    _show(args, generation, _generation_text(generation))
    return 0


def _generations_download(args: argparse.Namespace) -> int:
    with _client(args) as client:
        path = client.generations.download(args.generation_id, args.output, name=args.name)
    print(path)
    return 0


def _size(n: int) -> str:
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


#: Quotas measured in bytes, shown as sizes.
BYTE_QUOTAS = frozenset({"storage_bytes", "max_upload_bytes"})
WHEN_REACHED = {
    "refused_402": "refused (402)",
    "refused_413": "refused (413)",
    "refused_429": "refused (429, retry later)",
    "queued": "waits in the queue",
}


def _amount(quota: str, value: float) -> str:
    if quota in BYTE_QUOTAS:
        return _size(int(value))
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _quota_lines(quotas: types.Quotas) -> list[str]:
    """The plan, the tenant's status and overrides, then one line per quota."""
    overrides = ", ".join(
        f"{name}={'unlimited' if limit is None else limit}" for name, limit in quotas.overrides.items()
    )
    lines = [
        f"plan         {quotas.plan or 'none (everything unlimited)'}",
        f"status       {quotas.status}",
        f"overrides    {overrides or 'none'}",
        "",
        f"{'quota':<24}{'limit':>12}{'used':>14}{'remaining':>14}  at the limit",
    ]
    for use in quotas.quotas:
        limit = "unlimited" if use.limit is None else _amount(use.quota, use.limit)
        remaining = "-" if use.remaining is None else _amount(use.quota, use.remaining)
        reached = WHEN_REACHED.get(use.when_reached, use.when_reached)
        if use.resets_at is not None:
            reached += f"; resets {use.resets_at:%Y-%m-%d %H:%M} UTC"
        lines.append(
            f"{use.quota:<24}{limit:>12}{_amount(use.quota, use.used):>14}{remaining:>14}  {reached}"
        )
    return lines


def _print_quotas(args: argparse.Namespace, quotas: types.Quotas) -> None:
    _show(args, quotas, "\n".join(_quota_lines(quotas)))


def _print_usage(args: argparse.Namespace, usage: types.Usage, quotas: types.Quotas) -> None:
    """Totals, one line per day with work attributed to it, then the plan and its quotas.

    ``--json`` prints the usage document with the quotas document as its ``quotas`` member.
    """
    if args.json:
        print(json.dumps({**usage.to_dict(), "quotas": quotas.to_dict()}, indent=2))
        return
    tunes, made, stored = usage.fine_tunes, usage.generations, usage.storage
    lines = [
        f"period       {usage.since} to {usage.until} (UTC days, both included)",
        f"fine-tunes   {tunes.count} ({tunes.succeeded} succeeded), {tunes.gpu_seconds:,.2f} GPU-seconds",
        f"generations  {made.count} ({made.succeeded} succeeded), {made.gpu_seconds:,.2f} GPU-seconds,"
        f" {_size(made.output_bytes)} of outputs",
        f"storage now  {_size(stored.total_bytes)}: footage {_size(stored.footage_bytes)},"
        f" adapters {_size(stored.adapter_bytes)}, outputs {_size(stored.output_bytes)}",
        "",
    ]
    if usage.days:
        lines.append(f"{'day':<10}  {'fine-tune GPU-s':>15}  {'generation GPU-s':>16}  {'generations':>11}")
        lines += [
            f"{day.date}  {day.fine_tune_gpu_seconds:>15,.2f}  {day.generation_gpu_seconds:>16,.2f}"
            f"  {day.generations:>11}"
            for day in usage.days
        ]
    else:
        lines.append("no fine-tunes or generations in this period")
    print("\n".join([*lines, "", *_quota_lines(quotas)]))


def _usage(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_usage(args, client.usage.get(since=args.since, until=args.until), client.quotas.get())
    return 0


def _quotas(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_quotas(args, client.quotas.get())
    return 0


LEDGER_COLUMNS = (
    ("occurred_at", "when (UTC)"),
    ("charge", "charge"),
    ("quantity", "quantity"),
    ("work_id", "work"),
    ("attempt", "attempt"),
    ("id", "id"),
)


def _ledger(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(args, _listed(args, client.usage.ledger()), LEDGER_COLUMNS, empty="no charges")
    return 0


KEY_COLUMNS = (
    ("id", "id"),
    ("name", "name"),
    ("prefix", "prefix"),
    ("created_at", "created (UTC)"),
    ("last_used_at", "last used (UTC)"),
    ("revoked_at", "revoked (UTC)"),
)


def _keys_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        created = client.api_keys.create(name=args.name)
    _show(args, created, created.key)
    if not args.json and not args.field:
        print(
            f"API key {created.name!r} ({created.id}) made. This is the only time its secret is shown:"
            " store it now. To use it: export RUSHES_API_KEY=<the key>, or `rushes login` and paste it.",
            file=sys.stderr,
        )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(args, _listed(args, client.api_keys.list()), KEY_COLUMNS, empty="no API keys")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for key_id in args.key_ids:
            client.api_keys.revoke(key_id)
            print(f"revoked {key_id}")
    return 0


def _invitations_accept(args: argparse.Namespace) -> int:
    with _client(args) as client:
        joined = client.invitations.accept(token=args.token)
    _show(args, joined, f"joined {joined.tenant.name} ({joined.tenant.id}) as {joined.role}")
    return 0


def _invitations_decline(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.invitations.decline(token=args.token)
    print("declined")
    return 0


def _billing(args: argparse.Namespace) -> int:
    with _client(args) as client:
        billing = client.billing.get()
    lines = [
        f"plan          {billing.plan or 'none (everything unlimited)'}",
        f"status        {billing.status}",
        f"billing       {'through Stripe' if billing.enabled else 'off on this server'}",
    ]
    if billing.enabled:
        lines += [
            f"customer      {'yes' if billing.has_customer else 'not yet (made on the first portal visit)'}",
            f"subscription  {billing.subscription_status or 'none'}",
            "cards and invoices: `rushes billing portal` prints a link (owners only)",
        ]
    _show(args, billing, "\n".join(lines))
    return 0


def _billing_portal(args: argparse.Namespace) -> int:
    with _client(args) as client:
        portal = client.billing.portal()
    _show(args, portal, portal.url)
    return 0


def _bases(args: argparse.Namespace) -> int:
    with _client(args) as client:
        bases = client.bases.list()
    columns = (("id", "id"), ("family", "family"), ("parameters", "parameters (millions)"))
    _table(args, bases, columns, formats={"parameters": lambda n: f"{n / 1e6:,.1f}"})
    return 0


FINE_TUNE_COLUMNS = (
    ("id", "id"),
    ("status", "status"),
    ("step", "step"),
    ("total_steps", "of"),
    ("base_id", "base"),
    ("model_id", "model"),
    ("model_version", "version"),
    ("gpu_seconds", "GPU-seconds"),
    ("created_at", "created (UTC)"),
)


def _fine_tunes_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        jobs = _listed(args, client.fine_tunes.list(status=args.status))
        _table(
            args, jobs, FINE_TUNE_COLUMNS, empty="no fine-tunes", formats={"gpu_seconds": "{:,.1f}".format}
        )
    return 0


def _job_text(job: types.FineTune) -> str:
    made = f", model {job.model_id} version {job.model_version}" if job.model_version else ""
    reason = f": {job.failure_reason}" if job.failure_reason else ""
    return (
        f"{job.id}: {job.status}{reason}, step {job.step} of {job.total_steps}"
        f", {job.gpu_seconds:,.1f} GPU-seconds{made}"
    )


def _fine_tunes_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.fine_tunes.get(args.job_id)
    _show(args, job, _job_text(job))
    return 0


def _fine_tunes_watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.fine_tunes.wait(args.job_id, progress=not args.no_progress and sys.stderr.isatty())
    _show(args, job, _job_text(job))
    return 0 if job.status == "succeeded" else 1


def _fine_tunes_action(action: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            job = getattr(client.fine_tunes, action)(args.job_id)
        _show(args, job, _job_text(job))
        return 0

    return run


def _admin_tenants(args: argparse.Namespace) -> int:
    with _client(args) as client:
        columns = (
            ("id", "id"),
            ("name", "name"),
            ("status", "status"),
            ("members", "members"),
            ("assets", "assets"),
            ("storage_bytes", "storage"),
        )
        tenants = _listed(args, client.admin.tenants.list())
        _table(args, tenants, columns, empty="no tenants", formats={"storage_bytes": _size})
    return 0


def _admin_tenant_usage(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_usage(
            args,
            client.admin.tenants.usage(args.tenant_id, since=args.since, until=args.until),
            client.admin.tenants.quotas(args.tenant_id),
        )
    return 0


def _admin_tenant_quotas(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_quotas(args, client.admin.tenants.quotas(args.tenant_id))
    return 0


def _admin_set_quota(args: argparse.Namespace) -> int:
    """Change the plan and/or the overrides; overrides not named keep their values."""
    changes_overrides = bool(args.limits or args.unset or args.clear)
    if args.plan is None and not changes_overrides:
        raise RushesError("nothing to change: give --plan, --set, --unset or --clear")
    changes: dict[str, Any] = {}
    if args.plan is not None:
        changes["plan_id"] = None if args.plan == "default" else args.plan
    with _client(args) as client:
        if changes_overrides:
            overrides = {} if args.clear else dict(client.admin.tenants.quotas(args.tenant_id).overrides)
            for name in args.unset:
                overrides.pop(name, None)
            overrides.update(args.limits)
            changes["overrides"] = cast(types.PlanLimits, overrides)
        _print_quotas(args, client.admin.tenants.set_quotas(args.tenant_id, **changes))
    return 0


def _admin_tenant_status(status: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            tenant = client.admin.tenants.update(args.tenant_id, status=cast(TenantStatus, status))
        _show(args, tenant, f"{tenant.name} ({tenant.id}): {tenant.status}")
        return 0

    return run


def _admin_tenant_ledger(args: argparse.Namespace) -> int:
    with _client(args) as client:
        ledger = _listed(args, client.admin.tenants.ledger(args.tenant_id))
        _table(args, ledger, LEDGER_COLUMNS, empty="no charges")
    return 0


def _admin_tenant_compute(args: argparse.Namespace) -> int:
    with _client(args) as client:
        compute = client.admin.tenants.compute(args.tenant_id)
        if args.weight is not None or args.cap is not None or args.no_cap:
            cap = None if args.no_cap else compute.concurrency_cap if args.cap is None else args.cap
            weight = compute.weight if args.weight is None else args.weight
            compute = client.admin.tenants.set_compute(args.tenant_id, weight=weight, concurrency_cap=cap)
    cap_text = "none" if compute.concurrency_cap is None else f"{compute.concurrency_cap} at once"
    lines = [
        f"weight              {compute.weight:g}",
        f"concurrency cap     {cap_text}",
        f"recent GPU time     {compute.recent_gpu_seconds:.0f} s (decayed)",
    ]
    _show(args, compute, "\n".join(lines))
    return 0


def _admin_tenant_billing(args: argparse.Namespace) -> int:
    with _client(args) as client:
        billing = client.admin.tenants.billing(args.tenant_id)
    lines = [
        f"plan               {billing.plan or 'none (everything unlimited)'}",
        f"status             {billing.status}",
        f"billing            {'through Stripe' if billing.enabled else 'off on this server'}",
        f"Stripe customer    {billing.stripe_customer_id or 'none yet'}",
        f"subscription       {billing.stripe_subscription_id or 'none'} {billing.subscription_status or ''}",
        f"ledger sent        {billing.sent_entries} entries; {billing.unsent_entries} still to send",
    ]
    _show(args, billing, "\n".join(lines))
    return 0


PLAN_COLUMNS = ("id", "name", "is_default", *types.QUOTA_NAMES)


def _admin_plans_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        columns = [(name, name.replace("_", " ")) for name in PLAN_COLUMNS]
        _table(args, client.admin.plans.list(), columns, none="unlimited", empty="no plans")
    return 0


def _admin_plans_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        plan = client.admin.plans.create(
            name=args.name, is_default=args.default, **cast(types.PlanLimits, dict(args.limits))
        )
    _show(args, plan, plan.id)
    return 0


def _admin_plans_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _emit_one(args, client.admin.plans.get(args.plan_id), (*PLAN_COLUMNS, "created_at"), none="unlimited")
    return 0


def _admin_plans_update(args: argparse.Namespace) -> int:
    """Change what is given and keep the rest: the API replaces a plan whole."""
    with _client(args) as client:
        plan = client.admin.plans.get(args.plan_id)
        plan = client.admin.plans.replace(
            plan.id,
            name=plan.name if args.name is None else args.name,
            is_default=plan.is_default if args.default is None else args.default,
            **(plan.limits | cast(types.PlanLimits, dict(args.limits))),
        )
    _emit_one(args, plan, (*PLAN_COLUMNS, "created_at"), none="unlimited")
    return 0


def _admin_plans_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for plan_id in args.plan_ids:
            client.admin.plans.delete(plan_id)
            print(f"deleted {plan_id}")
    return 0


def _admin_users(args: argparse.Namespace) -> int:
    with _client(args) as client:
        columns = (
            ("id", "id"),
            ("email", "email"),
            ("is_platform_admin", "platform admin"),
            ("created_at", "created (UTC)"),
        )
        _table(args, _listed(args, client.admin.users.list()), columns, empty="no users")
    return 0


# --- parser -----------------------------------------------------------------------------------


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _limit(text: str) -> tuple[str, int | None]:
    """``QUOTA=N`` or ``QUOTA=unlimited``."""
    name, _, value = text.partition("=")
    if name not in types.QUOTA_NAMES:
        raise argparse.ArgumentTypeError(
            f"expected QUOTA=VALUE with QUOTA one of {', '.join(types.QUOTA_NAMES)}, got {text!r}"
        )
    if value == "unlimited":
        return name, None
    if value.isascii() and value.isdigit():
        return name, int(value)
    raise argparse.ArgumentTypeError(
        f"expected {name}= a whole number of at least 0, or 'unlimited', got {value!r}"
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-key", default=argparse.SUPPRESS, help="API key (default: RUSHES_API_KEY or login)"
    )
    common.add_argument("--base-url", default=argparse.SUPPRESS, help="API server (default: RUSHES_BASE_URL)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--field",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="print only this field of the result (a.b for a nested one; one line per item of a list)",
    )

    parser = argparse.ArgumentParser(
        prog="rushes",
        description=__doc__,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rushes {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, run: Handler | None, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help, parents=[common])
        if run is not None:
            sub.set_defaults(run=run)
        return sub

    def with_limit(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--limit", type=int, default=None, help="show at most this many")
        return sub

    def with_quota_limits(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--set",
            dest="limits",
            type=_limit,
            action="append",
            default=[],
            metavar="QUOTA=N|unlimited",
            help=f"a limit (repeatable); quotas: {', '.join(types.QUOTA_NAMES)}",
        )
        return sub

    def with_period(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--since",
            type=_day,
            default=None,
            help="first UTC day, YYYY-MM-DD (default: 1st of --until's month)",
        )
        sub.add_argument("--until", type=_day, default=None, help="last UTC day, included (default: today)")
        return sub

    signup = command(
        commands,
        "signup",
        _signup,
        f"make an account and its tenant, and stay signed in (password: {PASSWORD_ENV}, or asked for)",
    )
    signup.add_argument("--email", required=True)
    signup.add_argument("--tenant", required=True, metavar="NAME", help="your studio's or team's name")
    login = command(
        commands,
        "login",
        _login,
        "store an API key (checked first) for later commands; or, with --email, sign in with a password",
    )
    login.add_argument(
        "--email", default=None, help=f"sign in with this email and a password ({PASSWORD_ENV}, or asked for)"
    )
    login.add_argument(
        "--tenant-id", default=None, help="with --email: the tenant to act in (default: your first)"
    )
    command(
        commands, "logout", _logout, "forget the stored API key or session (a session ends on the server too)"
    )

    keys = command(commands, "keys", None, "API keys: for scripts, the SDK and CI").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    keys_create = command(
        keys, "create", _keys_create, "make an API key and print it (only this once) on stdout"
    )
    keys_create.add_argument("--name", default="cli", help="what the key is for, e.g. laptop (default: cli)")
    with_limit(command(keys, "list", _keys_list, "list the tenant's API keys, newest first"))
    command(keys, "revoke", _keys_revoke, "revoke API keys: they stop working at once").add_argument(
        "key_ids", nargs="+", metavar="KEY_ID"
    )

    invitations = command(
        commands, "invitations", None, "answer an invitation to a tenant, with the link you were sent"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    link_help = "the invitation's link, or its last part (the token); sign in with the invited email"
    for name, run_answer, help_text in (
        ("accept", _invitations_accept, "join the invitation's tenant with the role it gives"),
        ("decline", _invitations_decline, "decline the invitation: its link stops working"),
    ):
        command(invitations, name, run_answer, help_text).add_argument(
            "token", metavar="LINK", help=link_help
        )

    # `rushes billing` alone shows the plan and status.
    billing = command(
        commands, "billing", _billing, "the plan, payment status and subscription"
    ).add_subparsers(dest="action", required=False, metavar="ACTION")
    command(billing, "show", _billing, "the plan, payment status and subscription")
    command(billing, "portal", _billing_portal, "print a Stripe Customer Portal link for cards and invoices")
    command(
        commands, "me", _me, "show who you act as (the API key's or the session's user) and in which tenant"
    )

    upload = command(
        commands, "upload", _upload, "upload footage (resumes an interrupted upload of the same file)"
    )
    upload.add_argument("path")
    upload.add_argument(
        "--rights", choices=["owned", "licensed"], required=True, help="your right to train on it"
    )
    upload.add_argument("--licence-ref", default=None, help="licence reference, for --rights licensed")
    upload.add_argument("--content-type", default=None, help="e.g. video/mp4 (default: from the file name)")
    upload.add_argument("--concurrency", type=int, default=4, help="parts in flight at once")
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")

    assets = command(commands, "assets", None, "list and delete footage").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    with_limit(command(assets, "list", _assets_list, "list assets, newest first"))
    command(assets, "get", _assets_get, "show one asset").add_argument("asset_id")
    command(assets, "delete", _assets_delete, "delete assets").add_argument("asset_ids", nargs="+")

    datasets = command(commands, "datasets", None, "datasets and their versions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = command(datasets, "create", _datasets_create, "create a dataset")
    create.add_argument("name")
    create.add_argument("--description", default="")
    with_limit(command(datasets, "list", _datasets_list, "list datasets"))
    with_limit(command(datasets, "versions", _datasets_versions, "list a dataset's versions")).add_argument(
        "dataset_id"
    )
    add = command(datasets, "add-version", _datasets_add_version, "add a version made of assets")
    add.add_argument("dataset_id")
    add.add_argument(
        "items",
        nargs="+",
        metavar="ASSET_ID[=CAPTION]",
        help="assets in the version, each with an optional caption",
    )
    add.add_argument("--trigger-word", default=None)

    train = command(commands, "train", _train, "fine-tune a LoRA on a dataset version")
    train.add_argument("dataset_id")
    train.add_argument("version", type=int, help="the dataset version number")
    train.add_argument("--base", required=True, help="a base id (GET /v1/bases)")
    train.add_argument("--preset", choices=["quick", "standard", "thorough"], default="standard")
    for name, kind in (
        ("steps", int),
        ("learning-rate", float),
        ("rank", int),
        ("alpha", float),
        ("height", int),
        ("width", int),
        ("frames", int),
        ("seed", int),
    ):
        train.add_argument(f"--{name}", type=kind, default=None, help="overrides the preset")
    train.add_argument("--model-id", default=None, help="add a version to this model")
    train.add_argument("--model-name", default=None, help="name of the new model")
    train.add_argument("--wait", action="store_true", help="follow the job until it finishes")
    train.add_argument("--no-progress", action="store_true", help="no progress bar with --wait")

    command(
        commands, "bases", _bases, "the bases this server can fine-tune (use one with `rushes train --base`)"
    )

    # `rushes fine-tunes` alone lists them.
    fine_tunes = with_limit(
        command(commands, "fine-tunes", _fine_tunes_list, "fine-tune jobs: list, follow, cancel, resume")
    )
    fine_tunes.add_argument("--status", default=None, help="only those in this state, e.g. running")
    fine_tune_actions = fine_tunes.add_subparsers(dest="action", required=False, metavar="ACTION")
    listing = with_limit(
        command(fine_tune_actions, "list", _fine_tunes_list, "list fine-tunes, newest first")
    )
    listing.add_argument("--status", default=None, help="only those in this state, e.g. running")
    command(fine_tune_actions, "get", _fine_tunes_get, "show one fine-tune").add_argument("job_id")
    watch = command(
        fine_tune_actions,
        "watch",
        _fine_tunes_watch,
        "follow a fine-tune until it ends (a progress bar on a terminal); exit 1 unless it succeeded",
    )
    watch.add_argument("job_id")
    watch.add_argument("--no-progress", action="store_true", help="no progress bar")
    for action, what in (
        ("cancel", "cancel a fine-tune (a running one stops at its next step, keeping a checkpoint)"),
        ("resume", "queue a failed or cancelled fine-tune again, from its last checkpoint"),
    ):
        command(fine_tune_actions, action, _fine_tunes_action(action), what).add_argument("job_id")

    # `rushes models` alone lists them.
    models = with_limit(
        command(commands, "models", _models_list, "fine-tuned models and their adapters")
    ).add_subparsers(dest="action", required=False, metavar="ACTION")
    with_limit(command(models, "list", _models_list, "list models"))
    with_limit(command(models, "versions", _models_versions, "list a model's versions")).add_argument(
        "model_id"
    )
    download = command(models, "download", _models_download, "download a version's LoRA (.safetensors)")
    download.add_argument("model_id")
    download.add_argument("number", type=int)
    download.add_argument(
        "-o", "--output", default=None, help="file to write (default: model-vN.safetensors)"
    )

    generate = command(commands, "generate", _generate, "render a video with a fine-tuned model")
    generate.add_argument("model_id")
    generate.add_argument("prompt")
    generate.add_argument("--version", type=int, default=None, help="model version (default: its latest)")
    generate.add_argument("--negative-prompt", default=None, help="what to steer away from")
    for name, kind, what in (
        ("width", int, "pixels, a multiple of 16"),
        ("height", int, "pixels, a multiple of 16"),
        ("frames", int, "1 + a multiple of 4"),
        ("steps", int, "denoising steps"),
        ("guidance", float, "classifier-free guidance scale (1 turns it off)"),
        ("seed", int, "default: drawn at random"),
        ("strength", float, "how strongly the model's adapter applies, 0 to 2 (default 1)"),
    ):
        generate.add_argument(f"--{name}", type=kind, default=None, help=what)
    generate.add_argument("--wait", action="store_true", help="follow the generation until it finishes")
    generate.add_argument(
        "-o", "--output", default=None, help="save the video here once it succeeds (implies --wait)"
    )
    generate.add_argument("--no-progress", action="store_true", help="no progress bar while waiting")

    # `rushes generations` alone lists them.
    generations = command(
        commands, "generations", _generations_list, "generations: list, show, cancel, download outputs"
    )
    generation_actions = generations.add_subparsers(dest="action", required=False, metavar="ACTION")
    for listing in (generations, command(generation_actions, "list", _generations_list, "list generations")):
        listing.add_argument("--status", default=None, help="only those in this state, e.g. succeeded")
        listing.add_argument("--model-id", default=None, help="only those of this model")
        listing.add_argument("--limit", type=int, default=20, help="show at most this many (0: all)")
    command(generation_actions, "get", _generations_get, "show one generation").add_argument("generation_id")
    command(
        generation_actions,
        "cancel",
        _generations_cancel,
        "cancel a generation (a running one stops at its next step)",
    ).add_argument("generation_id")
    download_output = command(
        generation_actions, "download", _generations_download, "save an output of a generation that succeeded"
    )
    download_output.add_argument("generation_id")
    download_output.add_argument(
        "--name",
        choices=["video.mp4", "poster.jpg", "preview.webp"],
        default="video.mp4",
        help="which output (default: video.mp4)",
    )
    download_output.add_argument(
        "-o", "--output", default=".", help="a file, or a folder (default: here) for generation-ID-NAME"
    )

    with_period(
        command(
            commands,
            "usage",
            _usage,
            "GPU time, generations and storage, this month by default; then the plan and its quotas",
        )
    )
    command(commands, "quotas", _quotas, "the plan and each quota's limit, use and remainder")
    ledger = command(commands, "ledger", _ledger, "the usage ledger: every charge and credit, newest first")
    ledger.add_argument("--limit", type=int, default=20, help="show at most this many (0: all)")

    admin = command(commands, "admin", None, "platform administration (admins only)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    # `rushes admin tenants` alone lists them.
    tenants = with_limit(
        command(admin, "tenants", _admin_tenants, "list every tenant; show or change one's quotas and status")
    ).add_subparsers(dest="tenants_action", required=False, metavar="ACTION")
    with_limit(command(tenants, "list", _admin_tenants, "list every tenant"))
    with_period(
        command(tenants, "usage", _admin_tenant_usage, "a tenant's usage, plan and quotas")
    ).add_argument("tenant_id")
    command(tenants, "quotas", _admin_tenant_quotas, "a tenant's plan and quota use").add_argument(
        "tenant_id"
    )
    set_quota = with_quota_limits(
        command(
            tenants,
            "set-quota",
            _admin_set_quota,
            "move a tenant to a plan and/or change its overrides (others keep their values)",
        )
    )
    set_quota.add_argument("tenant_id")
    set_quota.add_argument("--plan", default=None, metavar="PLAN_ID|default", help="the tenant's plan")
    set_quota.add_argument(
        "--unset",
        choices=types.QUOTA_NAMES,
        action="append",
        default=[],
        metavar="QUOTA",
        help="drop an override: the plan's limit applies again (repeatable)",
    )
    set_quota.add_argument("--clear", action="store_true", help="drop every override first")
    for name, status, what in (
        ("suspend", "suspended", "refuse every call of the tenant's members"),
        ("activate", "active", "let a suspended or past-due tenant work again"),
        ("past-due", "past_due", "let the tenant read its work but start nothing new (402)"),
    ):
        command(tenants, name, _admin_tenant_status(status), what).add_argument("tenant_id")
    compute = command(
        tenants, "compute", _admin_tenant_compute, "a tenant's share of the GPUs; change it with the options"
    )
    compute.add_argument("tenant_id")
    compute.add_argument(
        "--weight", type=float, default=None, help="fair-share weight (twice: half the time counted)"
    )
    caps = compute.add_mutually_exclusive_group()
    caps.add_argument("--cap", type=int, default=None, help="most of its work running at once (0 holds it)")
    caps.add_argument("--no-cap", action="store_true", help="lift the concurrency cap")
    command(
        tenants, "billing", _admin_tenant_billing, "a tenant's Stripe customer, subscription and sends"
    ).add_argument("tenant_id")
    tenant_ledger = command(tenants, "ledger", _admin_tenant_ledger, "a tenant's usage ledger, newest first")
    tenant_ledger.add_argument("tenant_id")
    tenant_ledger.add_argument("--limit", type=int, default=20, help="show at most this many (0: all)")

    # `rushes admin plans` alone lists them.
    plans = command(admin, "plans", _admin_plans_list, "plans: the limits tenants buy").add_subparsers(
        dest="plans_action", required=False, metavar="ACTION"
    )
    command(plans, "list", _admin_plans_list, "list every plan")
    plan_create = with_quota_limits(command(plans, "create", _admin_plans_create, "create a plan"))
    plan_create.add_argument("name")
    plan_create.add_argument(
        "--default", action="store_true", help="make it the plan of every tenant without one"
    )
    command(plans, "show", _admin_plans_show, "show one plan").add_argument("plan_id")
    plan_update = with_quota_limits(
        command(plans, "update", _admin_plans_update, "change a plan's name, default or limits")
    )
    plan_update.add_argument("plan_id")
    plan_update.add_argument("--name", default=None, help="a new name")
    plan_update.add_argument(
        "--default",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make it (or stop it being) the default plan",
    )
    command(plans, "delete", _admin_plans_delete, "delete plans no tenant is on").add_argument(
        "plan_ids", nargs="+"
    )
    with_limit(command(admin, "users", _admin_users, "list every user"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, default in (("api_key", None), ("base_url", None), ("json", False), ("field", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("rushes: interrupted", file=sys.stderr)
        return 130
    except APIStatusError as exc:
        print(f"rushes: error: {exc}", file=sys.stderr)
        return 1
    except RushesError as exc:
        print(f"rushes: error: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"rushes: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
