"""``rushes-server worker`` (``python -m worker``): run queued work on this machine.

``rushes-server`` hands this command to a process of its own, so the API's process never
imports this package or the torch engine behind it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

ROLES = ("train", "generate", "webhooks", "billing", "cleanup", "ingest")
# The roles that put work on the accelerator; the others need no device.
DEVICE_ROLES = frozenset({"train", "generate"})
_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
}


def memory_size(text: str) -> int:
    """``24GiB``, ``80GB``, ``512MiB`` or a byte count."""
    number = text.strip().rstrip("BbIiKkMmGg")
    unit = text.strip()[len(number) :].lower()
    try:
        value = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (try 24GiB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("memory must be positive")
    return int(value)


def roles(text: str) -> frozenset[str]:
    chosen = frozenset(role.strip() for role in text.split(",") if role.strip())
    unknown = sorted(chosen - set(ROLES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}" if unknown else "name a role"
        )
    return chosen


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("seconds must be positive")
    return value


def remember_stop_signals() -> threading.Event:
    """From now on, SIGTERM and SIGINT are remembered instead of ending the process.

    Called first thing, so a stop that arrives while the worker still starts (imports, the
    metrics server) reaches the supervisor, which then starts nothing and cleans up; by
    default the signal would kill the process before its ``finally`` blocks ran.
    """
    asked = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: asked.set())
    return asked


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rushes-server worker",
        description="Run queued fine-tunes, generations and background work.",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)")
    parser.add_argument(
        "--memory", type=memory_size, default=None, help="accelerator memory to offer jobs, e.g. 80GiB"
    )
    parser.add_argument("--max-jobs", type=int, default=None, help="fine-tunes run at once when they fit")
    parser.add_argument(
        "--roles",
        type=roles,
        default=frozenset(ROLES),
        help="work to take, comma-separated: train (fine-tunes), generate (videos), "
        "webhooks (deliveries), billing (usage to Stripe, when configured), cleanup (expired uploads), "
        "ingest (checks of uploads sent straight to storage); "
        "default: all",
    )
    parser.add_argument(
        "--exit-when-idle",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="train role only: exit once no fine-tune has run for this long (a worker started per burst)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    asked_to_stop = remember_stop_signals()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.exit_when_idle is not None and args.roles != {"train"}:
        parser.error("--exit-when-idle needs --roles train alone")
    from core.settings import get_settings

    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"rushes-server: bad configuration: {exc}", file=sys.stderr)
        return 2
    import anyio

    from core.logs import configure_logging
    from worker.metrics import serving
    from worker.supervisor import Supervisor, WorkerOptions, device_memory

    configure_logging(settings.log)
    device = args.device or settings.worker.device
    memory = args.memory or settings.worker.memory_bytes
    if not memory and args.roles & DEVICE_ROLES:
        memory = device_memory(device)
    options = WorkerOptions(
        device=device,
        memory_bytes=memory,
        max_jobs=args.max_jobs or settings.worker.max_jobs,
        poll_seconds=settings.worker.poll_seconds,
        roles=args.roles,
        exit_when_idle=args.exit_when_idle,
    )
    try:
        with serving(settings.metrics):
            anyio.run(Supervisor(settings, options, asked_to_stop).run)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
