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
from typing import Any, Literal, TypeVar, cast

from rushes import types
from rushes._client import Client
from rushes._config import config_path, forget_config, load_config, save_config
from rushes._errors import APIError, APIStatusError, DuplicateAssetError, RushesError
from rushes._models import Model
from rushes._session import Session, log_in, sign_up
from rushes._version import __version__
from rushes.resources.admin import TenantStatus

Handler = Callable[[argparse.Namespace], int]
M = TypeVar("M", bound=Model)
#: A table's column: the result's field, and its heading (with its unit, where it has one).
Columns = Sequence[tuple[str, str]]


# The name of the variable that holds the password, not a password.
PASSWORD_ENV = "RUSHES_PASSWORD"  # noqa: S105


def _given_base_url(args: argparse.Namespace) -> str | None:
    """The server named by --base-url, else by RUSHES_BASE_URL; None if neither names one."""
    return args.base_url or os.environ.get("RUSHES_BASE_URL") or None


def _client(args: argparse.Namespace, api_key: str | None = None) -> Client:
    stored = load_config()
    key = api_key or args.api_key or os.environ.get("RUSHES_API_KEY") or stored.get("api_key")
    session = None if key else stored.get("session")
    if not key and not session:
        raise RushesError(
            "not signed in: run `rushes signup` (new here) or `rushes login`, or set RUSHES_API_KEY"
        )
    base_url = _given_base_url(args) or stored.get("base_url")
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


def _emit_one(args: argparse.Namespace, item: Model, columns: Sequence[str], none: str = "") -> None:
    data = item.to_dict()
    _show(args, item, "\n".join(f"{c}: {none if data.get(c) is None else data.get(c)}" for c in columns))


def _listed(args: argparse.Namespace, pager: Iterable[Any]) -> Iterable[Any]:
    return islice(pager, args.limit) if args.limit else pager


def _labelled(rows: Iterable[tuple[str, str]], width: int) -> str:
    """``label  value`` lines, the values lined up ``width`` characters in."""
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def _plan_name(plan: str | None) -> str:
    return plan or "none (everything unlimited)"


def _one(call: Callable[[Client, str], M], text: Callable[[M], str], key: str) -> Handler:
    """A command that does ``call`` to the one item named by the argument ``key`` and shows
    the item it answers with."""

    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            item = call(client, getattr(args, key))
        _show(args, item, text(item))
        return 0

    return run


def _each(call: Callable[[Client, str], object], key: str, done: str) -> Handler:
    """A command that does ``call`` to each item named by the argument ``key`` in turn, saying
    ``done <id>`` after each; the first refusal stops it."""

    def run(args: argparse.Namespace) -> int:
        with _client(args) as client:
            for item_id in getattr(args, key):
                call(client, item_id)
                print(f"{done} {item_id}")
        return 0

    return run


def _show_secret(args: argparse.Namespace, item: Model, secret: str, note: str) -> None:
    """A secret the server shows only this once: alone on stdout, so that it can be captured,
    and ``note`` (how to keep and use it) on stderr; with ``--json``, the whole document."""
    _show(args, item, secret)
    if not args.json and not args.field:
        print(note, file=sys.stderr)


# --- commands ---------------------------------------------------------------------------------


def _signed_in(args: argparse.Namespace, session: Session, text: Callable[[types.Me, Path], str]) -> int:
    """Keep a session just opened, replacing what was stored (later commands act with it), and
    say whom it signed in: ``text`` given who it is and the file that keeps it."""
    path = save_config({"session": session.cookies, "base_url": session.base_url})
    _show(args, session.me, text(session.me, path))
    return 0


def _signup(args: argparse.Namespace) -> int:
    password = _password(confirm=True)
    session = sign_up(
        email=args.email, password=password, tenant_name=args.tenant, base_url=_given_base_url(args)
    )
    return _signed_in(
        args,
        session,
        lambda me, path: (
            f"Signed up as {me.email}, owner of tenant {me.tenant.name} ({me.tenant.id}).\n"
            f"Signed in to {session.base_url}; the session is stored in {path}.\n"
            "Next, make an API key for scripts and the SDK:\n"
            "  export RUSHES_API_KEY=$(rushes keys create --name laptop)"
        ),
    )


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
        if _given_base_url(args):
            stored["base_url"] = client.base_url
    path = save_config(stored)
    print(f"Logged in as {me.email} (tenant {me.tenant.name}). Key stored in {path}")
    return 0


def _login_with_password(args: argparse.Namespace) -> int:
    session = log_in(
        email=args.email,
        password=_password(confirm=False),
        tenant_id=args.tenant_id,
        base_url=_given_base_url(args),
    )
    return _signed_in(
        args,
        session,
        lambda me, path: (
            f"Signed in to {session.base_url} as {me.email} (tenant {me.tenant.name}, {me.role}). "
            f"Session stored in {path}"
        ),
    )


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
        try:
            asset = client.assets.upload(
                args.path,
                rights=rights,
                content_type=args.content_type,
                progress=not args.no_progress and sys.stderr.isatty(),
                concurrency=args.concurrency,
                allow_duplicate=args.allow_duplicate,
                direct=not args.through_api,
            )
        except DuplicateAssetError as exc:
            raise RushesError(
                f"{Path(args.path).name} is already in your library as asset {exc.existing_asset_id}; "
                "--allow-duplicate uploads it again."
            ) from exc
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


_assets_delete = _each(lambda client, asset_id: client.assets.delete(asset_id), "asset_ids", "deleted")


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


def _models_card(args: argparse.Namespace) -> int:
    with _client(args) as client:
        card = client.models.versions.card(args.model_id, args.number)
    if args.output is None:
        print(card, end="")
    else:
        Path(args.output).write_text(card, encoding="utf-8")
        print(args.output)
    return 0


#: Each limit of a model's guardrails: its unit, and what it limits.
GUARDRAIL_LIMITS = (
    ("max_width", "pixels", "the widest picture a generation may ask for, in pixels"),
    ("max_height", "pixels", "the tallest picture a generation may ask for, in pixels"),
    ("max_frames", "frames", "the most frames a generation may ask for"),
    ("max_steps", "steps", "the most denoising steps a generation may ask for"),
)
MEMORISATION_POLICIES = {
    "record": "record: a video that nearly copies the training footage is kept, the verdict recorded",
    "block": "block: a video that nearly copies the training footage is withheld",
}


def _guardrails_text(guardrails: types.Guardrails) -> str:
    rows = [("blocked terms", ", ".join(guardrails.blocked_terms) or "none")]
    for name, unit, _ in GUARDRAIL_LIMITS:
        limit = getattr(guardrails, name)
        rows.append((name.replace("_", " "), "the platform's own" if limit is None else f"{limit:,} {unit}"))
    policy = guardrails.memorisation_policy
    rows.append(("memorisation", MEMORISATION_POLICIES.get(policy, policy)))
    return _labelled(rows, 15)


_guardrails_get = _one(
    lambda client, model_id: client.models.get_guardrails(model_id), _guardrails_text, "model_id"
)


def _guardrails_set(args: argparse.Namespace) -> int:
    """Change what is given and keep the rest: the API replaces a model's guardrails whole."""
    # A limit not named is absent from ``args`` (argparse.SUPPRESS): None is a value, "lift it".
    limits = {name: getattr(args, name) for name, _, _ in GUARDRAIL_LIMITS if hasattr(args, name)}
    if not (args.block or args.unblock or limits or args.memorisation):
        raise RushesError(
            "nothing to change: give --block, --unblock, --max-width, --max-height, --max-frames,"
            " --max-steps or --memorisation"
        )
    with _client(args) as client:
        current = client.models.get_guardrails(args.model_id)
        terms = [*current.blocked_terms, *args.block]
        for term in args.unblock:
            # The server matches terms whatever their case, so a term is named whatever its case.
            kept = [t for t in terms if t.casefold() != term.casefold()]
            if len(kept) == len(terms):
                listed = ", ".join(terms) or "none"
                raise RushesError(
                    f"{term!r} is not a blocked term of this model; its blocked terms: {listed}"
                )
            terms = kept
        guardrails = client.models.set_guardrails(
            args.model_id,
            blocked_terms=terms,
            **{name: getattr(current, name) for name, _, _ in GUARDRAIL_LIMITS} | limits,
            memorisation_policy=cast(
                Literal["record", "block"], args.memorisation or current.memorisation_policy
            ),
        )
    _show(args, guardrails, _guardrails_text(guardrails))
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


_generations_get = _one(
    lambda client, generation_id: client.generations.get(generation_id), _generation_text, "generation_id"
)
_generations_cancel = _one(
    lambda client, generation_id: client.generations.cancel(generation_id), _generation_text, "generation_id"
)


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
    rows = [("plan", _plan_name(quotas.plan)), ("status", quotas.status), ("overrides", overrides or "none")]
    lines = [
        *_labelled(rows, 13).splitlines(),
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
    _show_secret(
        args,
        created,
        created.key,
        f"API key {created.name!r} ({created.id}) made. This is the only time its secret is shown:"
        " store it now. To use it: export RUSHES_API_KEY=<the key>, or `rushes login` and paste it.",
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(args, _listed(args, client.api_keys.list()), KEY_COLUMNS, empty="no API keys")
    return 0


_keys_revoke = _each(lambda client, key_id: client.api_keys.revoke(key_id), "key_ids", "revoked")


WEBHOOK_COLUMNS = (
    ("id", "id"),
    ("enabled", "enabled"),
    ("event_types", "event types"),
    ("url", "url"),
    ("description", "description"),
    ("created_at", "created (UTC)"),
)
DELIVERY_COLUMNS = (
    ("id", "id"),
    ("event_type", "event"),
    ("status", "status"),
    ("attempts", "attempts"),
    ("last_status_code", "last answer"),
    ("last_duration_ms", "took (ms)"),
    ("created_at", "created (UTC)"),
    ("next_attempt_at", "next try (UTC)"),
    ("last_error", "last error"),
)


def _webhook_text(webhook: types.Webhook) -> str:
    rotated = webhook.secret_rotated_at
    rows = [
        ("url", webhook.url),
        ("description", webhook.description or "-"),
        ("enabled", _cell(webhook.enabled, "-")),
        ("event types", ", ".join(webhook.event_types)),
        (
            "signing secret",
            f"version {webhook.secret_version}, "
            + (f"rotated {rotated:%Y-%m-%d %H:%M:%S} UTC" if rotated else "never rotated"),
        ),
        ("created", f"{webhook.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("updated", f"{webhook.updated_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    return f"{webhook.id}\n{_labelled(rows, 16)}"


def _webhooks_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _table(
            args,
            _listed(args, client.webhooks.list()),
            WEBHOOK_COLUMNS,
            empty="no webhook endpoints",
            formats={"event_types": lambda names: str(len(names))},
        )
    return 0


def _webhooks_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        created = client.webhooks.create(
            url=args.url, description=args.description, event_types=args.events, enabled=args.enabled
        )
    _show_secret(
        args,
        created,
        created.secret,
        f"Webhook endpoint {created.id} made: {created.url} gets {len(created.event_types)} types of"
        f" event{'' if created.enabled else ' once enabled'}. This is the only time its signing secret"
        " is shown: store it now, and check each delivery's Rushes-Signature with it"
        " (rushes.webhooks.verify_signature).",
    )
    return 0


_webhooks_get = _one(lambda client, webhook_id: client.webhooks.get(webhook_id), _webhook_text, "webhook_id")


def _webhooks_update(args: argparse.Namespace) -> int:
    changes = {
        "url": args.url,
        "description": args.description,
        "event_types": args.events,
        "enabled": args.enabled,
    }
    if all(value is None for value in changes.values()):
        raise RushesError("nothing to change: give --url, --description, --event, --enable or --disable")
    with _client(args) as client:
        webhook = client.webhooks.update(args.webhook_id, **changes)
    _show(args, webhook, _webhook_text(webhook))
    return 0


_webhooks_delete = _each(
    lambda client, webhook_id: client.webhooks.delete(webhook_id), "webhook_ids", "deleted"
)


def _webhooks_rotate_secret(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rotated = client.webhooks.rotate_secret(args.webhook_id)
    _show_secret(
        args,
        rotated,
        rotated.secret,
        f"Signing secret version {rotated.secret_version} of {rotated.id} made. This is the only time"
        " it is shown: store it now. For a while (24 hours by default) deliveries carry a signature"
        " made with the previous secret too, so receivers can move over.",
    )
    return 0


def _webhooks_deliveries(args: argparse.Namespace) -> int:
    with _client(args) as client:
        deliveries = _listed(args, client.webhooks.deliveries(args.webhook_id, status=args.status))
        _table(
            args,
            deliveries,
            DELIVERY_COLUMNS,
            empty="no deliveries",
            formats={"last_status_code": "HTTP {}".format, "last_duration_ms": "{:,}".format},
        )
    return 0


def _webhooks_redeliver(args: argparse.Namespace) -> int:
    with _client(args) as client:
        delivery = client.webhooks.redeliver(args.webhook_id, args.delivery_id)
    _show(
        args,
        delivery,
        f"delivery {delivery.id} ({delivery.event_type}) queued to be sent again,"
        " with a fresh set of attempts",
    )
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


def _billing_rows(billing: types.Billing) -> list[tuple[str, str]]:
    """What a tenant's and an admin's view of billing begin with: the plan, the tenant's status
    and whether this server bills."""
    return [
        ("plan", _plan_name(billing.plan)),
        ("status", billing.status),
        ("billing", "through Stripe" if billing.enabled else "off on this server"),
    ]


def _billing(args: argparse.Namespace) -> int:
    with _client(args) as client:
        billing = client.billing.get()
    rows = _billing_rows(billing)
    if billing.enabled:
        rows += [
            ("customer", "yes" if billing.has_customer else "not yet (made on the first portal visit)"),
            ("subscription", billing.subscription_status or "none"),
        ]
    text = _labelled(rows, 14)
    if billing.enabled:
        text += "\ncards and invoices: `rushes billing portal` prints a link (owners only)"
    _show(args, billing, text)
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


_fine_tunes_get = _one(lambda client, job_id: client.fine_tunes.get(job_id), _job_text, "job_id")
_fine_tunes_cancel = _one(lambda client, job_id: client.fine_tunes.cancel(job_id), _job_text, "job_id")
_fine_tunes_resume = _one(lambda client, job_id: client.fine_tunes.resume(job_id), _job_text, "job_id")


def _fine_tunes_watch(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.fine_tunes.wait(args.job_id, progress=not args.no_progress and sys.stderr.isatty())
    _show(args, job, _job_text(job))
    return 0 if job.status == "succeeded" else 1


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
    rows = [
        ("weight", f"{compute.weight:g}"),
        ("concurrency cap", cap_text),
        ("recent GPU time", f"{compute.recent_gpu_seconds:.0f} s (decayed)"),
    ]
    _show(args, compute, _labelled(rows, 20))
    return 0


def _admin_tenant_billing(args: argparse.Namespace) -> int:
    with _client(args) as client:
        billing = client.admin.tenants.billing(args.tenant_id)
    rows = [
        *_billing_rows(billing),
        ("Stripe customer", billing.stripe_customer_id or "none yet"),
        ("subscription", f"{billing.stripe_subscription_id or 'none'} {billing.subscription_status or ''}"),
        ("ledger sent", f"{billing.sent_entries} entries; {billing.unsent_entries} still to send"),
    ]
    _show(args, billing, _labelled(rows, 19))
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


_admin_plans_delete = _each(lambda client, plan_id: client.admin.plans.delete(plan_id), "plan_ids", "deleted")


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


def _guardrail_limit(text: str) -> int | None:
    """A whole number of at least 1, or ``none``."""
    if text == "none":
        return None
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a whole number of at least 1, or 'none' for the platform's own limit, got {text!r}"
    )


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

    def with_limit(sub: argparse.ArgumentParser, default: int | None = None) -> argparse.ArgumentParser:
        more = " (0: all)" if default else ""
        sub.add_argument("--limit", type=int, default=default, help=f"show at most this many{more}")
        return sub

    def with_status(sub: argparse.ArgumentParser, example: str) -> argparse.ArgumentParser:
        sub.add_argument("--status", default=None, help=f"only those in this state, e.g. {example}")
        return sub

    def listing(
        parent: Any,
        name: str,
        help: str,
        run: Handler,
        list_help: str,
        options: Callable[[argparse.ArgumentParser], object] = with_limit,
        dest: str = "action",
    ) -> Any:
        """``rushes NAME`` alone lists, as ``rushes NAME list`` does, both with ``options``; the
        subcommands for its other actions are to be added to what is returned."""
        top = command(parent, name, run, help)
        actions = top.add_subparsers(dest=dest, required=False, metavar="ACTION")
        for sub in (top, command(actions, "list", run, list_help)):
            options(sub)
        return actions

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

    webhooks = listing(
        commands,
        "webhooks",
        "webhook endpoints: where events of your work are sent, and their delivery log",
        _webhooks_list,
        "list the tenant's webhook endpoints",
    )
    webhook_create = command(
        webhooks,
        "create",
        _webhooks_create,
        "make an endpoint (owners only) and print its signing secret (only this once) on stdout",
    )
    webhook_create.add_argument("url", help="an https URL on a public address")
    webhook_create.add_argument("--description", default="", help="what it is for")
    webhook_create.add_argument("--disabled", dest="enabled", action="store_false", help="send nothing yet")
    command(webhooks, "get", _webhooks_get, "show one endpoint").add_argument("webhook_id")
    webhook_update = command(
        webhooks, "update", _webhooks_update, "change an endpoint (owners only); what is not named stays"
    )
    webhook_update.add_argument("webhook_id")
    webhook_update.add_argument("--url", default=None, help="an https URL on a public address")
    webhook_update.add_argument("--description", default=None, help="what it is for")
    enabling = webhook_update.add_mutually_exclusive_group()
    enabling.add_argument(
        "--enable",
        dest="enabled",
        action="store_const",
        const=True,
        default=None,
        help="send again, from now on (what happened while it was off is not sent)",
    )
    enabling.add_argument(
        "--disable",
        dest="enabled",
        action="store_const",
        const=False,
        help="stop sending events to it",
    )
    for sub in (webhook_create, webhook_update):
        sub.add_argument(
            "--event",
            dest="events",
            action="append",
            default=None,
            metavar="TYPE",
            help="an event type to send, e.g. fine_tune.succeeded (repeatable; default at create:"
            " every type but the *.progress ones)",
        )
    command(webhooks, "delete", _webhooks_delete, "delete endpoints (owners only)").add_argument(
        "webhook_ids", nargs="+", metavar="WEBHOOK_ID"
    )
    command(
        webhooks,
        "rotate-secret",
        _webhooks_rotate_secret,
        "make a new signing secret (owners only) and print it (only this once) on stdout",
    ).add_argument("webhook_id")
    deliveries = with_limit(
        command(webhooks, "deliveries", _webhooks_deliveries, "an endpoint's delivery log, newest first")
    )
    deliveries.add_argument("webhook_id")
    deliveries.add_argument(
        "--status", choices=["pending", "succeeded", "failed"], default=None, help="only those in this state"
    )
    redeliver = command(
        webhooks, "redeliver", _webhooks_redeliver, "send a finished delivery again (owners only)"
    )
    redeliver.add_argument("webhook_id")
    redeliver.add_argument("delivery_id")

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
    upload.add_argument(
        "--allow-duplicate", action="store_true", help="store it even if your library already holds this file"
    )
    upload.add_argument(
        "--through-api",
        action="store_true",
        help="send every part through the API, even where the server lets parts go straight to storage",
    )

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

    fine_tune_actions = listing(
        commands,
        "fine-tunes",
        "fine-tune jobs: list, follow, cancel, resume",
        _fine_tunes_list,
        "list fine-tunes, newest first",
        lambda sub: with_status(with_limit(sub), "running"),
    )
    command(fine_tune_actions, "get", _fine_tunes_get, "show one fine-tune").add_argument("job_id")
    watch = command(
        fine_tune_actions,
        "watch",
        _fine_tunes_watch,
        "follow a fine-tune until it ends (a progress bar on a terminal); exit 1 unless it succeeded",
    )
    watch.add_argument("job_id")
    watch.add_argument("--no-progress", action="store_true", help="no progress bar")
    for action, run_action, what in (
        (
            "cancel",
            _fine_tunes_cancel,
            "cancel a fine-tune (a running one stops at its next step, keeping a checkpoint)",
        ),
        (
            "resume",
            _fine_tunes_resume,
            "queue a failed or cancelled fine-tune again, from its last checkpoint",
        ),
    ):
        command(fine_tune_actions, action, run_action, what).add_argument("job_id")

    models = listing(
        commands, "models", "fine-tuned models, their adapters and guardrails", _models_list, "list models"
    )
    with_limit(command(models, "versions", _models_versions, "list a model's versions")).add_argument(
        "model_id"
    )
    download = command(models, "download", _models_download, "download a version's LoRA (.safetensors)")
    download.add_argument("model_id")
    download.add_argument("number", type=int)
    download.add_argument(
        "-o", "--output", default=None, help="file to write (default: model-vN.safetensors)"
    )
    card = command(models, "card", _models_card, "a version's model card (README.md, Hugging Face format)")
    card.add_argument("model_id")
    card.add_argument("number", type=int)
    card.add_argument("-o", "--output", default=None, help="file to write (default: print it)")
    guardrails = command(
        models, "guardrails", None, "what generations of a model may ask for: blocked terms and limits"
    ).add_subparsers(dest="guardrails_action", required=True, metavar="ACTION")
    command(guardrails, "get", _guardrails_get, "show a model's guardrails").add_argument("model_id")
    set_guardrails = command(
        guardrails,
        "set",
        _guardrails_set,
        "change a model's guardrails (owners only; what is not named keeps its value);"
        " they apply to generations requested from then on",
    )
    set_guardrails.add_argument("model_id")
    set_guardrails.add_argument(
        "--block", action="append", default=[], metavar="TERM", help="refuse prompts holding it (repeatable)"
    )
    set_guardrails.add_argument(
        "--unblock", action="append", default=[], metavar="TERM", help="stop refusing a term (repeatable)"
    )
    for name, _, what in GUARDRAIL_LIMITS:
        set_guardrails.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_guardrail_limit,
            default=argparse.SUPPRESS,
            metavar="N|none",
            help=f"{what}; none: the platform's own limit",
        )
    set_guardrails.add_argument(
        "--memorisation",
        choices=list(MEMORISATION_POLICIES),
        default=None,
        help="keep (record) or withhold (block) a video that nearly copies the training footage",
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

    def generation_filters(sub: argparse.ArgumentParser) -> None:
        with_status(sub, "succeeded").add_argument(
            "--model-id", default=None, help="only those of this model"
        )
        with_limit(sub, default=20)

    generation_actions = listing(
        commands,
        "generations",
        "generations: list, show, cancel, download outputs",
        _generations_list,
        "list generations",
        generation_filters,
    )
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
    with_limit(
        command(commands, "ledger", _ledger, "the usage ledger: every charge and credit, newest first"),
        default=20,
    )

    admin = command(commands, "admin", None, "platform administration (admins only)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    tenants = listing(
        admin,
        "tenants",
        "list every tenant; show or change one's quotas and status",
        _admin_tenants,
        "list every tenant",
        dest="tenants_action",
    )
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
    with_limit(
        command(tenants, "ledger", _admin_tenant_ledger, "a tenant's usage ledger, newest first"), default=20
    ).add_argument("tenant_id")

    plans = listing(
        admin,
        "plans",
        "plans: the limits tenants buy",
        _admin_plans_list,
        "list every plan",
        options=lambda sub: None,
        dest="plans_action",
    )
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
