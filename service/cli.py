"""``rushes-server``: serve the API, apply migrations, manage admins, run maintenance."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import getpass
import os
import subprocess
import sys
from collections.abc import Sequence

from core.settings import Settings, get_settings

_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def _limit_malloc_arenas() -> None:
    """glibc gives every thread that allocates its own arena and keeps freed decoder buffers
    there, so a server's RSS climbs with each upload it probes; two arenas hold it flat
    (docs/benchmarks.md) at no measured throughput cost."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to tune
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    _limit_malloc_arenas()
    from service.db.migrate import migrate
    from service.embedded_worker import EmbeddedWorker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.server.migrate:
        migrate(settings.database_url)
    # The embedded default is a whole system: one worker beside the API, ending with it.
    worker = EmbeddedWorker() if settings.worker.embedded else None
    if worker is not None:
        worker.start()
    try:
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=args.host or settings.server.host,
            port=args.port or settings.server.port,
            log_config=None,
            proxy_headers=True,
            forwarded_allow_ips=settings.server.forwarded_allow_ips,
        )
    finally:
        if worker is not None:
            worker.stop()
    return 0


def _worker(worker_args: Sequence[str]) -> int:
    # The worker imports torch: it runs as its own program, in place of this process, so
    # signals from a process manager reach it directly.
    os.execv(sys.executable, [sys.executable, "-m", "worker", *worker_args])  # noqa: S606


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from service.db.migrate import migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url, args.revision)
    print(f"database is at revision {args.revision}")
    return 0


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from service.accounts.bootstrap import make_platform_admin
    from service.db.migrate import migrate

    # A fresh data folder has no tables yet; migrating first is what any other command does.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.database_url)
    password = os.environ.get("RUSHES_ADMIN_PASSWORD") or getpass.getpass("Password for the new admin: ")
    created = asyncio.run(make_platform_admin(settings, args.email, password, args.tenant_name))
    print(f"{args.email.lower()} is a platform admin{' (new account)' if created else ''}")
    return 0


def _cleanup(settings: Settings, args: argparse.Namespace) -> int:
    from service.tenants.cleanup import clean_up_leftovers
    from service.uploads.cleanup import clean_up_uploads

    async def run() -> None:
        from core.storage import storage_from_settings
        from service.db.engine import create_engine, session_factory

        engine = create_engine(settings.database_url)
        sessions, storage = session_factory(engine), storage_from_settings(settings)
        report = await clean_up_uploads(sessions, storage, settings.uploads)
        leftovers = await clean_up_leftovers(sessions, storage)
        await engine.dispose()
        print(
            f"expired upload sessions removed: {report.expired_sessions}; "
            f"orphaned multipart uploads aborted: {report.orphaned_multiparts}; "
            f"expired idempotency keys removed: {report.expired_idempotency_keys}; "
            f"stale sign-in counts forgotten: {report.forgotten_sign_in_counts}; "
            f"deleted tenants swept: {leftovers.deleted_tenants}; "
            f"outputs of lost leases removed: {leftovers.lost_outputs}"
        )

    asyncio.run(run())
    return 0


def _train(trainer_args: Sequence[str]) -> int:
    # The trainer runs in its own process: the API side never imports torch.
    return subprocess.call([sys.executable, "-m", "trainer", *trainer_args])  # noqa: S603


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rushes-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations and serve the API and web app")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(run=_migrate)

    admin = commands.add_parser(
        "create-admin", help="make an account a platform admin, creating it if needed"
    )
    admin.add_argument("email")
    admin.add_argument("--tenant-name", default="Platform")
    admin.set_defaults(run=_create_admin)

    commands.add_parser(
        "worker",
        help="run fine-tunes, generations, webhook delivery and cleanup from the queue "
        "(rushes-server worker --help for its options)",
        add_help=False,
    )

    cleanup = commands.add_parser(
        "cleanup", help="remove expired uploads and orphaned multipart uploads once"
    )
    cleanup.set_defaults(run=_cleanup)

    train = commands.add_parser(
        "train", help="fine-tune from a folder of clips, without the service", add_help=False
    )
    train.add_argument("trainer_args", nargs=argparse.REMAINDER)
    train.set_defaults(run=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train(argv[1:])
    if argv[:1] == ["worker"]:
        return _worker(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"rushes-server: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.run(settings, args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"rushes-server: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
