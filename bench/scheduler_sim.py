"""Fair share against FIFO on a simulated cluster, through the real scheduling code.

A discrete-event simulation (a simulated clock, no sleeping) replays one synthetic trace
three times: with a FIFO baseline that lives only here, with
``service.jobs.scheduling.FairQueue(reserve=False)`` (the fair rule alone, as first
shipped) and with ``FairQueue()`` as the service runs it (fair rule plus reservation and
backfill for the fair choice that does not fit; ``--starve-after`` adds an oldest-first
starvation bound). Everything else is identical: the trace, the cluster, the placement of
arriving jobs, and when workers ask for work. Workers report their running jobs with
expected ends; the scheduler sees durations only through estimates with lognormal error
(``--estimate-error``, sigma 0.5), never the true ones.

    .venv/bin/python -m bench.scheduler_sim                      # the defaults below
    .venv/bin/python -m bench.scheduler_sim --jobs 20000 --tenants 1000 --gpus 50

The trace (fixed seed):

* cluster: ``--gpus`` workers, 40% 24 GiB, 40% 48 GiB, 20% 80 GiB; a worker runs as many
  jobs at once as fit in its memory;
* tenants: ``--tenants``; each job's tenant is drawn Zipf-like, P(rank k) ~ k**-``--zipf``
  (1.1), so a few tenants submit most jobs and most submit a handful;
* peak memory: 6 / 10 / 20 / 40 / 70 GiB with probability .30 / .30 / .20 / .15 / .05
  (70 GiB runs only on 80 GiB cards);
* duration: lognormal, median 20 min, sigma 1 (mean ~33 min), clipped to [1 min, 24 h];
* arrivals: Poisson, at the rate that makes the offered memory-seconds ``--load`` (1.0)
  times the cluster's memory; packing losses make the usable capacity lower, so queues form.

Workers ask "what next, given my free memory?" whenever a job on them ends, and keep
asking until nothing is given; every ``--poll`` seconds (300) every worker with free memory
asks as well. An arriving job goes to the worker with the least free memory that holds it
(best fit, all policies), which then asks the policy; if it gets nothing (it is holding
memory for a reserved job), the next best fit asks.

FIFO baseline: the first job in arrival order that fits the asking worker's free memory
(skipping jobs that do not fit, i.e. not strict head-of-line, which would idle memory and
make the comparison flatter for fair share than it should be).

Fair share: ``FairQueue`` with a one-hour half-life; a running job is charged the fraction
of its worker's memory it holds. All tenants have weight 1 and no cap here.

Metrics, over the arrival window [first arrival, last arrival] unless said otherwise:

* memory utilisation: time-averaged used / total GPU memory;
* queue wait (start - arrival), all jobs (the run drains, so no job is censored), split by
  tenant: light = at most 5 jobs in the trace, heavy = at least 100;
* Jain's index of share vs entitlement (the headline fairness figure): every ``--sample``
  seconds in which some job is waiting, each tenant with work (queued or running) has a
  demand d (GiB of its queued and running jobs) and an allocation a (GiB running); its
  entitlement e is the max-min fair (water-filling) division of the memory in use among
  the demands, and x = a / e. Jain = (sum x)**2 / (n * sum x**2), averaged over samples.
  1 means every tenant holds exactly its fair share of what is in use. This is what fair
  share promises; per-job measures are not (see docs/bench-scheduler.md);
* Jain's index of per-tenant mean slowdown ((wait + run) / run), reported as a second
  view: it measures how evenly tenants are delayed relative to their jobs' length;
* throughput: jobs completed within the arrival window; makespan: until the last ends;
* runtime: wall-clock of each policy's simulation, and microseconds per scheduler call.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import shlex
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import numpy as np

from service.jobs.scheduling import (
    DEFAULT_STARVE_AFTER_SECONDS,
    FairQueue,
    QueuedJob,
    RunningJob,
    WorkerSlot,
)

GiB = 1 << 30
SIZES_GIB = (6, 10, 20, 40, 70)
SIZE_P = (0.30, 0.30, 0.20, 0.15, 0.05)
GPU_GIB = (24, 48, 80)
GPU_P = (0.4, 0.4, 0.2)
LIGHT_MAX_JOBS = 5
HEAVY_MIN_JOBS = 100


# --------------------------------------------------------------------------- trace


@dataclass
class Trace:
    arrival: np.ndarray  # seconds, ascending
    size_gib: np.ndarray  # int
    duration: np.ndarray  # seconds
    tenant: np.ndarray  # int in [0, tenants)
    gpu_gib: np.ndarray  # int, one per worker
    tenants: int
    estimate: np.ndarray  # seconds: what the scheduler believes each job's duration to be


def make_trace(
    jobs: int, tenants: int, gpus: int, seed: int, load: float, zipf: float, estimate_error: float = 0.5
) -> Trace:
    rng = np.random.default_rng(seed)
    counts = np.floor(np.array(GPU_P) * gpus).astype(int)
    counts[0] += gpus - counts.sum()
    gpu_gib = rng.permutation(np.repeat(GPU_GIB, counts))
    size = rng.choice(SIZES_GIB, size=jobs, p=SIZE_P)
    duration = np.clip(rng.lognormal(np.log(20 * 60), 1.0, size=jobs), 60.0, 24 * 3600.0)
    ranks = np.arange(1, tenants + 1, dtype=float) ** -zipf
    by_rank = rng.permutation(tenants)  # so tenant index says nothing about activity
    tenant = by_rank[rng.choice(tenants, size=jobs, p=ranks / ranks.sum())]
    rate = load * gpu_gib.sum() / float(np.mean(size * duration))  # jobs per second
    arrival = np.cumsum(rng.exponential(1.0 / rate, size=jobs))
    # A generator of its own, so the trace itself does not depend on the estimate's error.
    noise = np.random.default_rng([seed, 1]).lognormal(0.0, estimate_error, size=jobs)
    return Trace(arrival, size, duration, tenant, gpu_gib, tenants, duration * noise)


# --------------------------------------------------------------------------- policies


class FairShare:
    """``FairQueue``, with or without its reservation for starving jobs."""

    def __init__(self, trace: Trace, reserve: bool, starve_after_seconds: float) -> None:
        self.name = "fair share + reservation" if reserve else "fair share"
        self.queue = FairQueue(reserve=reserve, starve_after_seconds=starve_after_seconds)
        self.jobs = [
            QueuedJob(UUID(int=i), UUID(int=int(t) + 1), int(s) * GiB, float(a), float(e))
            for i, (t, s, a, e) in enumerate(
                zip(trace.tenant, trace.size_gib, trace.arrival, trace.estimate, strict=True)
            )
        ]

    def push(self, index: int, now: float) -> None:
        self.queue.push(self.jobs[index])

    def pick(self, free_gib: int, total_gib: int, now: float, running: dict[int, float]) -> int | None:
        # What the worker reports: its running jobs and when it expects each to end.
        jobs = self.jobs
        slot = WorkerSlot(
            free_bytes=free_gib * GiB,
            total_bytes=total_gib * GiB,
            running=tuple(RunningJob(jobs[i].estimated_bytes, end) for i, end in running.items()),
        )
        job = self.queue.pick(slot, now)
        return None if job is None else job.id.int

    def complete(self, index: int, now: float) -> None:
        self.queue.complete(self.jobs[index].id, now)


class Fifo:
    """First job in arrival order that fits; one deque per size keeps that O(sizes)."""

    name = "FIFO"

    def __init__(self, trace: Trace) -> None:
        self.size = trace.size_gib.tolist()
        self.by_size: dict[int, deque[int]] = {s: deque() for s in SIZES_GIB}

    def push(self, index: int, now: float) -> None:
        self.by_size[self.size[index]].append(index)  # indices are in arrival order

    def pick(self, free_gib: int, total_gib: int, now: float, running: dict[int, float]) -> int | None:
        best: deque[int] | None = None
        for size, waiting in self.by_size.items():
            if size <= free_gib and waiting and (best is None or waiting[0] < best[0]):
                best = waiting
        return None if best is None else best.popleft()

    def complete(self, index: int, now: float) -> None:
        pass


# --------------------------------------------------------------------------- simulation


@dataclass
class Result:
    name: str
    start: np.ndarray
    end: np.ndarray
    utilisation: float
    completed_in_window: int
    jain_share: float
    contended_samples: int
    calls: int
    call_seconds: float
    wall_seconds: float


def jain(x: np.ndarray) -> float:
    return float(x.sum() ** 2 / (len(x) * np.square(x).sum())) if len(x) and x.any() else 1.0


def water_fill(demand: np.ndarray, capacity: float) -> np.ndarray:
    """Max-min fair division of ``capacity`` among ``demand``s."""
    order = np.sort(demand)
    n = len(order)
    before = np.concatenate(([0.0], np.cumsum(order)[:-1]))
    filled = before + order * (n - np.arange(n))  # used if the level were order[k]
    k = int(np.searchsorted(filled, capacity))
    if k >= n:
        return demand.astype(float)
    level = (capacity - before[k]) / (n - k)
    shares: np.ndarray = np.minimum(demand, level)
    return shares


def share_fairness(demand: np.ndarray, held: np.ndarray) -> float:
    active = demand > 0
    d, a = demand[active].astype(float), held[active].astype(float)
    return jain(a / water_fill(d, float(a.sum())))


def simulate(policy: FairShare | Fifo, trace: Trace, sample_every: float, poll_every: float) -> Result:
    began = time.perf_counter()
    sizes = trace.size_gib.tolist()
    durations = trace.duration.tolist()
    estimates = trace.estimate.tolist()
    tenant_of = trace.tenant.tolist()
    arrivals = trace.arrival.tolist()
    total = trace.gpu_gib.tolist()
    free = list(total)
    smallest = min(SIZES_GIB)
    # Workers by free GiB, for best-fit placement of an arriving job.
    by_free: list[set[int]] = [set() for _ in range(max(total) + 1)]
    for worker, gib in enumerate(free):
        by_free[gib].add(worker)
    # Each worker's running jobs and their expected (estimated, not true) ends.
    on_worker: list[dict[int, float]] = [{} for _ in total]
    n = len(sizes)
    start = np.full(n, np.nan)
    end = np.full(n, np.nan)
    demand = np.zeros(trace.tenants, dtype=np.int64)  # GiB queued + running, per tenant
    held = np.zeros(trace.tenants, dtype=np.int64)  # GiB running, per tenant
    window_end = arrivals[-1]
    running: list[tuple[float, int, int]] = []  # (end, job, worker)
    used = 0
    used_integral = 0.0
    last_t = 0.0
    waiting = 0
    calls = 0
    call_seconds = 0.0
    completed_in_window = 0
    jain_sum = 0.0
    samples = 0
    next_sample = sample_every
    next_poll = poll_every
    clock = time.perf_counter

    def set_free(worker: int, gib: int) -> None:
        by_free[free[worker]].discard(worker)
        free[worker] = gib
        by_free[gib].add(worker)

    def fill(worker: int, now: float) -> bool:
        """The worker asks until nothing is given; whether it started anything."""
        nonlocal used, waiting, calls, call_seconds
        started = False
        while waiting and free[worker] >= smallest:
            t0 = clock()
            index = policy.pick(free[worker], total[worker], now, on_worker[worker])
            call_seconds += clock() - t0
            calls += 1
            if index is None:
                break
            started = True
            size = sizes[index]
            assert size <= free[worker]
            set_free(worker, free[worker] - size)
            used += size
            waiting -= 1
            held[tenant_of[index]] += size
            start[index] = now
            on_worker[worker][index] = now + estimates[index]
            heapq.heappush(running, (now + durations[index], index, worker))
        return started

    next_arrival = 0
    while next_arrival < n or running:
        if next_poll <= last_t:  # the queue was empty for a while: the next tick after now
            next_poll = (math.floor(last_t / poll_every) + 1) * poll_every
        now = min(
            arrivals[next_arrival] if next_arrival < n else np.inf,
            running[0][0] if running else np.inf,
            next_poll if waiting else np.inf,
        )
        # Time-weighted memory use and fairness samples, inside the arrival window.
        while next_sample <= min(now, window_end):
            if waiting:
                jain_sum += share_fairness(demand, held)
                samples += 1
            next_sample += sample_every
        if last_t < window_end:
            used_integral += used * (min(now, window_end) - last_t)
        last_t = now
        if next_arrival < n and now == arrivals[next_arrival]:
            index = next_arrival
            next_arrival += 1
            size = sizes[index]
            demand[tenant_of[index]] += size
            waiting += 1
            t0 = clock()
            policy.push(index, now)
            call_seconds += clock() - t0
            calls += 1
            # Best fit first; a worker holding memory for a reserved job may decline, and
            # then the next-best one is asked.
            for gib in range(size, len(by_free)):
                if any(fill(worker, now) for worker in list(by_free[gib])):
                    break
        elif running and now == running[0][0]:
            _, index, worker = heapq.heappop(running)
            size = sizes[index]
            t0 = clock()
            policy.complete(index, now)
            call_seconds += clock() - t0
            calls += 1
            end[index] = now
            completed_in_window += now <= window_end
            set_free(worker, free[worker] + size)
            del on_worker[worker][index]
            used -= size
            demand[tenant_of[index]] -= size
            held[tenant_of[index]] -= size
            fill(worker, now)
        else:
            # Workers also poll: a reservation that ends elsewhere frees this one's memory.
            for gib in range(smallest, len(by_free)):
                for worker in list(by_free[gib]):
                    fill(worker, now)
            next_poll = now + poll_every
    return Result(
        name=policy.name,
        start=start,
        end=end,
        utilisation=used_integral / (sum(total) * (window_end - arrivals[0])),
        completed_in_window=completed_in_window,
        jain_share=jain_sum / samples if samples else 1.0,
        contended_samples=samples,
        calls=calls,
        call_seconds=call_seconds,
        wall_seconds=time.perf_counter() - began,
    )


# --------------------------------------------------------------------------- report


def minutes(x: np.ndarray, q: float) -> str:
    return f"{np.percentile(x, q) / 60:.1f}" if len(x) else "-"


def report(trace: Trace, results: list[Result], command: str, total_seconds: float) -> str:
    def waits(r: Result, mask: np.ndarray) -> str:
        wait = (r.start - trace.arrival)[mask]
        return f"{minutes(wait, 50)} / {minutes(wait, 95)}"

    jobs_per_tenant = np.bincount(trace.tenant, minlength=trace.tenants)
    per_job = jobs_per_tenant[trace.tenant]
    light, heavy = per_job <= LIGHT_MAX_JOBS, per_job >= HEAVY_MIN_JOBS
    submitting = jobs_per_tenant > 0
    n_light = int((submitting & (jobs_per_tenant <= LIGHT_MAX_JOBS)).sum())
    n_heavy = int((jobs_per_tenant >= HEAVY_MIN_JOBS).sum())
    window_h = (trace.arrival[-1] - trace.arrival[0]) / 3600
    offered = float((trace.size_gib * trace.duration).sum() / (trace.gpu_gib.sum() * 3600 * window_h))
    rows = [
        ("GPU memory utilisation (time-avg used/total)", lambda r: f"{r.utilisation:.1%}"),
        (
            "queue wait p50 / p95, all jobs (min)",
            lambda r: waits(r, np.ones(len(trace.arrival), dtype=bool)),
        ),
        (
            f"queue wait p50 / p95, light tenants' jobs (<= {LIGHT_MAX_JOBS} jobs) (min)",
            lambda r: waits(r, light),
        ),
        (
            f"queue wait p50 / p95, heavy tenants' jobs (>= {HEAVY_MIN_JOBS} jobs) (min)",
            lambda r: waits(r, heavy),
        ),
        (
            "queue wait p95 by size, " + " / ".join(map(str, SIZES_GIB)) + " GiB (min)",
            lambda r: " / ".join(
                minutes((r.start - trace.arrival)[trace.size_gib == s], 95) for s in SIZES_GIB
            ),
        ),
        ("Jain, share vs max-min entitlement (headline)", lambda r: f"{r.jain_share:.3f}"),
        ("Jain, per-tenant mean slowdown", lambda r: f"{slowdown_jain(trace, r, submitting):.3f}"),
        ("jobs completed in the arrival window", lambda r: f"{r.completed_in_window:,}"),
        (
            "makespan, until the last job ends (h)",
            lambda r: f"{(np.nanmax(r.end) - trace.arrival[0]) / 3600:.1f}",
        ),
        (
            "scheduler calls / mean µs per call",
            lambda r: f"{r.calls:,} / {r.call_seconds / r.calls * 1e6:.1f}",
        ),
        ("simulation wall time (s)", lambda r: f"{r.wall_seconds:.1f}"),
    ]
    lines = [
        f"    {command}",
        "",
        f"Machine: {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}.",
        "",
        f"Trace: {len(trace.arrival):,} jobs from {int(submitting.sum()):,} of {trace.tenants:,} "
        f"tenants over {window_h:.1f} h on {len(trace.gpu_gib)} GPUs ({int(trace.gpu_gib.sum()):,} GiB); "
        f"offered load {offered:.1%} of memory. Light tenants: {n_light:,} ({int(light.sum()):,} jobs); "
        f"heavy: {n_heavy:,} ({int(heavy.sum()):,} jobs). Fairness sampled at "
        + " / ".join(str(r.contended_samples) for r in results)
        + " contended instants.",
        "",
        "| metric | " + " | ".join(r.name for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in results) + " |" for label, cell in rows]
    lines += ["", f"Total runtime (trace, all simulations, report): {total_seconds:.1f} s."]
    return "\n".join(lines)


def slowdown_jain(trace: Trace, result: Result, submitting: np.ndarray) -> float:
    slowdown = (result.start - trace.arrival + trace.duration) / trace.duration
    sums = np.bincount(trace.tenant, weights=slowdown, minlength=trace.tenants)
    counts = np.bincount(trace.tenant, minlength=trace.tenants)
    return jain(sums[submitting] / counts[submitting])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--gpus", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", type=float, default=1.0, help="offered memory-seconds / cluster memory")
    parser.add_argument("--zipf", type=float, default=1.1, help="tenant activity exponent")
    parser.add_argument("--sample", type=float, default=300.0, help="seconds between fairness samples")
    parser.add_argument(
        "--starve-after",
        type=float,
        default=DEFAULT_STARVE_AFTER_SECONDS / 60,
        help="minutes of waiting after which a job goes first, oldest first (reservation policy)",
    )
    parser.add_argument(
        "--estimate-error",
        type=float,
        default=0.5,
        help="sigma of the lognormal error of the duration estimates the scheduler sees",
    )
    parser.add_argument("--poll", type=float, default=300.0, help="seconds between worker polls")
    parser.add_argument("--markdown-out", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    trace = make_trace(
        args.jobs, args.tenants, args.gpus, args.seed, args.load, args.zipf, args.estimate_error
    )
    results = []
    policies: list[FairShare | Fifo] = [
        Fifo(trace),
        FairShare(trace, reserve=False, starve_after_seconds=args.starve_after * 60),
        FairShare(trace, reserve=True, starve_after_seconds=args.starve_after * 60),
    ]
    for policy in policies:
        results.append(simulate(policy, trace, args.sample, args.poll))
        print(f"{policy.name}: {results[-1].wall_seconds:.1f} s", file=sys.stderr, flush=True)
    command = shlex.join(
        [sys.executable, "-m", "bench.scheduler_sim", *(argv if argv is not None else sys.argv[1:])]
    )
    text = report(trace, results, command, time.perf_counter() - began)
    print(text)
    if args.markdown_out:
        args.markdown_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
