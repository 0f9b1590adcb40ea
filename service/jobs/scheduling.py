"""Fair-share choice of the next training job for a worker with some free accelerator memory.

The rule (one implementation, used by the database-backed queue and by the simulator in
``bench/scheduler_sim.py``): among tenants below their concurrency cap that have a waiting
job which fits the worker's free memory, take the tenant with the least recent GPU time
divided by its plan weight; ties go to the tenant whose oldest fitting job has waited
longest, then to the lower tenant id. From that tenant, run its oldest job that fits.

Reservation, so that large jobs do not starve (the rule above alone lets small fair jobs
refill a card forever, since it only looks at jobs that fit the free memory). A worker that
says its size (``WorkerSlot.total_bytes``) first finds its *head*: the oldest *starving*
job (waited ``starve_after_seconds``, off by default; its tenant below its cap) that fits
the worker's total memory, or if there is none, the rule's own choice among all jobs
that fit the total memory, as if the worker were empty. If the head fits the free memory,
the worker runs it (without starving jobs that is simply the rule's pick). If not, the
worker holds memory for it, as batch schedulers' EASY backfill does: from its running
jobs' expected ends (``WorkerSlot.running``) it finds the *shadow time* when the head would
fit, and takes, by the fair rule, only jobs that cannot delay that: jobs that fit in the
memory the head leaves spare at the shadow time, or that are expected
(``QueuedJob.expected_seconds``) to end before it. Memory in use with no expected end makes
the shadow time unknown, and the worker then drains (takes only what fits beside the head
for good). Every worker the head fits holds memory for it, so it starts on the first that
frees up. So the fair choice is never passed over for lack of a big enough hole; with a
finite starvation bound, jobs past it go oldest first, which bounds every wait as FIFO does.
``reserve=False`` turns all of this off (the rule alone).

"Recent GPU time" is GPU-seconds decayed exponentially with a half-life (an hour by
default). A running job is charged continuously, at the fraction of the device's memory it
holds per second (a whole GPU when the worker does not say its size), so a tenant that has
just started a hundred jobs is not still "light" until the first of them finishes.

Pure Python on purpose: no database or web imports, so the simulator and the queue share it.

Usage, two ways:

* long-lived, in memory: a ``FairQueue`` takes ``push`` / ``pick`` / ``complete`` calls and
  keeps the usage itself; a pick costs O(log n) amortised in queued jobs and tenants (see
  ``FairQueue``), so it can hold every tenant's backlog;
* stateless: ``pick_next(queued, slot, tenants, now)`` builds a ``FairQueue`` from a bounded
  candidate list and tenant rows (usage stored as two columns, see ``add_decayed``) and
  answers once. For the reservation the candidates must include the oldest starving jobs
  that fit ``slot.total_bytes`` (not only those that fit the free memory).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

__all__ = [
    "DEFAULT_HALF_LIFE_SECONDS",
    "DEFAULT_STARVE_AFTER_SECONDS",
    "DecayedUsage",
    "FairQueue",
    "QueuedJob",
    "RunningJob",
    "TenantState",
    "WorkerSlot",
    "add_decayed",
    "decayed_value",
    "pick_next",
    "shadow",
]

DEFAULT_HALF_LIFE_SECONDS = 3600.0
# A job waiting this long is starving: it goes before the fair order, oldest first. Off
# (infinite) by default: in the simulator any finite bound that caps the largest jobs' wait
# turns the whole backlog FIFO once it is reached (docs/bench-scheduler.md).
DEFAULT_STARVE_AFTER_SECONDS = math.inf

# Jobs are indexed by size class so that "which tenants have a job that fits?" never walks
# tenants whose jobs are all too big. Eight classes per octave keep the one class that
# straddles the free memory (the only one needing a per-job check) within ~9% of it.
_CLASSES_PER_OCTAVE = 8
_NUM_CLASSES = 64 * _CLASSES_PER_OCTAVE  # every size below 2**64 bytes
# Past this many half-lives since the epoch, 2**x approaches float range: rebase then.
_REBASE_HALF_LIVES = 256.0
_LN2 = math.log(2.0)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job waiting to run. ``enqueued_at`` is in seconds on the same clock as ``now``."""

    id: UUID
    tenant_id: UUID
    estimated_bytes: int
    enqueued_at: float
    # How long it will run once started, if the caller can estimate it. Only backfill uses
    # it: a job with no estimate never runs in memory held for a reserved job.
    expected_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job running on the asking worker; ``expected_end`` (same clock as ``now``) if known."""

    estimated_bytes: int
    expected_end: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerSlot:
    """What a worker can take now.

    ``total_bytes`` is the device's memory; it sets the rate at which a job started here is
    charged (``estimated_bytes / total_bytes`` GPU-seconds per second). Without it a job is
    charged a whole GPU. Without it there is no reservation either (the scheduler cannot
    tell which waiting jobs could ever run here).

    ``running`` lists the worker's running jobs with their expected ends, so that a
    reservation knows when memory frees up. Memory in use (``total_bytes - free_bytes``)
    not covered by ``running``, or covered by a job with no ``expected_end``, counts as
    held for an unknown time: the worker then drains for a reserved job instead of
    backfilling.
    """

    free_bytes: int
    total_bytes: int | None = None
    running: tuple[RunningJob, ...] = ()


@dataclass(frozen=True, slots=True)
class TenantState:
    """A tenant as the scheduler sees it.

    ``recent_gpu_seconds`` must be decayed to the ``now`` of the call that receives it (see
    ``decayed_value``); ``running`` counts the tenant's jobs already running anywhere.
    """

    tenant_id: UUID
    recent_gpu_seconds: float = 0.0
    weight: float = 1.0
    running: int = 0
    concurrency_cap: int | None = None


# --------------------------------------------------------------------------- decayed usage


def decayed_value(
    value: float, at: float, now: float, half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS
) -> float:
    """``value`` recorded at ``at``, decayed to ``now``.

    A ``now`` before ``at`` (clocks of two writers disagreeing) returns ``value`` unchanged:
    extrapolating backwards would inflate usage.
    """
    if now <= at:
        return value
    return value * math.exp2(-(now - at) / half_life_seconds)


def add_decayed(
    value: float,
    at: float,
    seconds: float,
    now: float,
    half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS,
) -> tuple[float, float]:
    """Charge ``seconds`` at ``now`` to the stored pair ``(value, at)``; returns the new pair.

    The pair is what the database keeps (two columns). A charge dated before ``at`` is
    decayed to ``at`` instead of moving ``at`` back, so concurrent writers that arrive out of
    order still agree on the total.
    """
    if now >= at:
        return decayed_value(value, at, now, half_life_seconds) + seconds, now
    return value + seconds * math.exp2(-(at - now) / half_life_seconds), at


@dataclass
class DecayedUsage:
    """GPU-seconds that halve every ``half_life_seconds``."""

    half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS
    stored: float = 0.0
    at: float = 0.0

    def __post_init__(self) -> None:
        if not self.half_life_seconds > 0:
            raise ValueError("half_life_seconds must be positive")

    def add(self, seconds: float, now: float) -> None:
        self.stored, self.at = add_decayed(self.stored, self.at, seconds, now, self.half_life_seconds)

    def value(self, now: float) -> float:
        return decayed_value(self.stored, self.at, now, self.half_life_seconds)


# --------------------------------------------------------------------------- reservation


def shadow(slot: WorkerSlot, need_bytes: int, now: float) -> tuple[float, int]:
    """When ``need_bytes`` will be free on ``slot``, and how many bytes beyond it are free then.

    Running jobs end at their ``expected_end`` (one past due is taken to end now); memory in
    use that ``slot.running`` does not account for, or that a job without an expected end
    holds, is never freed. If ``need_bytes`` is never free the time is ``math.inf`` and the
    spare bytes are what is free once every job with an expected end has ended (negative).
    """
    total = slot.total_bytes if slot.total_bytes is not None else slot.free_bytes
    free = slot.free_bytes
    if free >= need_bytes:
        return now, free - need_bytes
    ends = sorted(
        (max(r.expected_end, now), r.estimated_bytes) for r in slot.running if r.expected_end is not None
    )
    i = 0
    while i < len(ends):
        at = ends[i][0]
        while i < len(ends) and ends[i][0] == at:  # everything ending at the same instant
            free = min(total, free + ends[i][1])
            i += 1
        if free >= need_bytes:
            return at, free - need_bytes
    return math.inf, free - need_bytes


# --------------------------------------------------------------------------- the fair queue

# (usage / weight, enqueued_at, tenant id, job id): the rule's order, made total by job id.
_Entry = tuple[float, float, UUID, UUID]


def _size_class(size: int) -> int:
    # Monotone in ``size``, which is all exactness needs: a job that fits is never in a
    # higher class than the free memory, and a job in a lower class always fits.
    if size <= 1:
        return 0
    return min(int(math.log2(size) * _CLASSES_PER_OCTAVE), _NUM_CLASSES - 1)


@dataclass(slots=True)
class _ClassJobs:
    """One tenant's waiting jobs of one size class, oldest first (lazy deletion)."""

    heap: list[tuple[float, UUID]] = field(default_factory=list)
    jobs: dict[UUID, QueuedJob] = field(default_factory=dict)

    def oldest(self) -> QueuedJob | None:
        heap = self.heap
        while heap and heap[0][1] not in self.jobs:
            heapq.heappop(heap)
        return self.jobs[heap[0][1]] if heap else None

    def oldest_where(self, allowed: Callable[[QueuedJob], bool]) -> QueuedJob | None:
        best: QueuedJob | None = None
        for job in self.jobs.values():
            if allowed(job) and (best is None or (job.enqueued_at, job.id) < (best.enqueued_at, best.id)):
                best = job
        return best


@dataclass(slots=True)
class _Tenant:
    tenant_id: UUID
    weight: float = 1.0
    cap: int | None = None
    running_elsewhere: int = 0  # as loaded from stored state
    running_here: int = 0  # started by this queue and not yet complete
    # GPU-seconds in epoch units (multiplied by 2**((t - epoch) / half_life)), exact as of
    # ``settled_at``. Decay is common to all tenants, so comparing these compares usage now.
    usage: float = 0.0
    settled_at: float = 0.0
    # GPU-seconds per second that the tenant's running jobs (started here) accrue.
    rate: float = 0.0
    classes: dict[int, _ClassJobs] = field(default_factory=dict)
    entries: dict[int, _Entry] = field(default_factory=dict)

    @property
    def running(self) -> int:
        return self.running_elsewhere + self.running_here

    def eligible(self) -> bool:
        return self.cap is None or self.running < self.cap


class FairQueue:
    """Waiting jobs of many tenants, answering fair-share picks in O(log n) amortised.

    Layout: each tenant keeps its jobs per size class (a min-heap by enqueue time). Each size
    class has a heap of one entry per tenant with jobs in it, keyed by the rule's order
    ``(usage / weight, that tenant's oldest job in the class, tenant id, job id)``; a segment
    tree over the classes holds each class's best entry. A pick for ``free_bytes`` reads the
    tree's minimum over the classes wholly below ``free_bytes`` (every job there fits) and
    walks, in key order, only the one class that straddles ``free_bytes``.

    Running tenants' usage grows between events, so stored keys are lower bounds. A pick
    that lands on a tenant whose key is stale brings it up to date, re-indexes it and looks
    again; each tenant is refreshed at most once per pick, and the usual winner (a tenant
    with nothing running) needs none. Superseded heap entries are dropped lazily and the
    heaps are compacted when garbage dominates.
    """

    def __init__(
        self,
        *,
        half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS,
        now: float = 0.0,
        reserve: bool = True,
        starve_after_seconds: float = DEFAULT_STARVE_AFTER_SECONDS,
    ) -> None:
        if not half_life_seconds > 0:
            raise ValueError("half_life_seconds must be positive")
        if not starve_after_seconds >= 0:
            raise ValueError("starve_after_seconds must be non-negative")
        self._half_life = half_life_seconds
        self._reserve = reserve
        self._starve_after = starve_after_seconds
        self._epoch = now
        self._tenants: dict[UUID, _Tenant] = {}
        self._queued: dict[UUID, tuple[UUID, int]] = {}  # job id -> (tenant id, class)
        self._running: dict[UUID, tuple[UUID, float]] = {}  # job id -> (tenant id, rate)
        self._class_heaps: list[list[_Entry]] = [[] for _ in range(_NUM_CLASSES)]
        self._class_live = [0] * _NUM_CLASSES
        self._tree: list[_Entry | None] = [None] * (2 * _NUM_CLASSES)
        # Age index, for the reservation: per size class, every waiting job by (enqueued_at,
        # id) (lazy deletion), and the sorted classes that hold any.
        self._age_heaps: dict[int, list[tuple[float, UUID]]] = {}
        self._class_jobs = [0] * _NUM_CLASSES
        self._nonempty: list[int] = []

    # ---------------------------------------------------------------- tenants

    def configure_tenant(
        self, tenant_id: UUID, *, weight: float = 1.0, concurrency_cap: int | None = None
    ) -> None:
        """Set a tenant's plan weight and cap, keeping its usage and running jobs."""
        if not weight > 0:
            raise ValueError("weight must be positive")
        tenant = self._tenant(tenant_id)
        tenant.weight = weight
        tenant.cap = concurrency_cap
        self._reindex(tenant)

    def load_tenant(self, state: TenantState, now: float) -> None:
        """Seed a tenant from stored state (usage as of ``now``, jobs running elsewhere)."""
        if not state.weight > 0:
            raise ValueError("weight must be positive")
        self._maybe_rebase(now)
        tenant = self._tenant(state.tenant_id)
        tenant.weight = state.weight
        tenant.cap = state.concurrency_cap
        tenant.running_elsewhere = state.running
        tenant.usage = state.recent_gpu_seconds * self._scale(now)
        tenant.settled_at = now
        self._reindex(tenant)

    def charge(self, tenant_id: UUID, gpu_seconds: float, now: float) -> None:
        """Add GPU-seconds used at ``now`` outside this queue's own running jobs."""
        self._maybe_rebase(now)
        tenant = self._tenant(tenant_id)
        self._settle(tenant, now)
        tenant.usage += gpu_seconds * self._scale(now)
        self._reindex(tenant)

    def tenant_state(self, tenant_id: UUID, now: float) -> TenantState:
        """The tenant's usage decayed to ``now``, with running jobs charged up to ``now``."""
        tenant = self._tenants.get(tenant_id) or _Tenant(tenant_id)
        scale = self._scale(now)
        usage = tenant.usage + self._accrued(tenant, now)
        return TenantState(
            tenant_id=tenant_id,
            recent_gpu_seconds=usage / scale,
            weight=tenant.weight,
            running=tenant.running,
            concurrency_cap=tenant.cap,
        )

    # ---------------------------------------------------------------- jobs

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._queued

    @property
    def running_count(self) -> int:
        return len(self._running)

    def push(self, job: QueuedJob) -> None:
        if job.id in self._queued or job.id in self._running:
            raise ValueError(f"job {job.id} is already in the queue")
        tenant = self._tenant(job.tenant_id)
        size_class = _size_class(job.estimated_bytes)
        jobs = tenant.classes.get(size_class)
        if jobs is None:
            jobs = tenant.classes[size_class] = _ClassJobs()
        jobs.jobs[job.id] = job
        heapq.heappush(jobs.heap, (job.enqueued_at, job.id))
        self._queued[job.id] = (job.tenant_id, size_class)
        if not self._class_jobs[size_class]:
            bisect.insort(self._nonempty, size_class)
        self._class_jobs[size_class] += 1
        heapq.heappush(self._age_heaps.setdefault(size_class, []), (job.enqueued_at, job.id))
        self._reindex_class(tenant, size_class)

    def remove(self, job_id: UUID) -> QueuedJob | None:
        """Withdraw a waiting job (cancelled, or taken by another scheduler); None if absent."""
        located = self._queued.pop(job_id, None)
        if located is None:
            return None
        tenant = self._tenants[located[0]]
        jobs = tenant.classes[located[1]]
        job = jobs.jobs.pop(job_id)
        if not jobs.jobs:
            del tenant.classes[located[1]]
        self._class_jobs[located[1]] -= 1
        if not self._class_jobs[located[1]]:
            self._nonempty.remove(located[1])
            del self._age_heaps[located[1]]
        else:
            ages = self._age_heaps[located[1]]
            if len(ages) > 64 and len(ages) > 4 * self._class_jobs[located[1]]:
                ages[:] = [a for a in ages if a[1] in self._queued]
                heapq.heapify(ages)
        self._reindex_class(tenant, located[1])
        return job

    def pick(self, slot: WorkerSlot, now: float) -> QueuedJob | None:
        """Choose the next job for ``slot`` and mark it running.

        The head of the starving jobs if it fits now; otherwise the fair-share choice among
        the jobs that fit ``slot.free_bytes`` and, while a head is waiting for this worker,
        cannot delay its start (see the module docstring). Returns None when there is no
        such job. The job then accrues usage until ``complete``.
        """
        self._maybe_rebase(now)
        free = slot.free_bytes
        spare: int | None = None  # backfill limits while a reserved head waits
        within: float | None = None
        head = self.reserved_head(slot, now)
        if head is not None:
            if head.estimated_bytes <= free:
                return self._start(head, slot, now)
            until, spare = shadow(slot, head.estimated_bytes, now)
            within = until - now if until < math.inf else None
            if spare < 0 and within is None:
                return None  # draining: nothing fits beside the head, no known end
        while True:
            best = self._best(free, spare, within)
            if best is None:
                return None
            tenant = self._tenants[best[2]]
            if tenant.rate > 0.0 and tenant.settled_at < now:
                self._settle(tenant, now)
                self._reindex(tenant)
                continue
            job = tenant.classes[self._queued[best[3]][1]].jobs[best[3]]
            return self._start(job, slot, now)

    def reserved_head(self, slot: WorkerSlot, now: float) -> QueuedJob | None:
        """The job ``slot`` serves first, holding memory for it if it does not fit yet; or None.

        The oldest starving job (waited ``starve_after_seconds``, tenant below its cap) that
        fits ``slot.total_bytes``; if there is none, the rule's choice among all waiting
        jobs that fit ``slot.total_bytes``, as if the worker were empty.
        """
        if not self._reserve or not slot.total_bytes:
            return None
        starving = self._oldest_starving(slot, now) if math.isfinite(self._starve_after) else None
        return starving or self._fair_head(slot, now)

    def _oldest_starving(self, slot: WorkerSlot, now: float) -> QueuedJob | None:
        """The starving job ``slot`` serves first.

        The oldest job, of a tenant below its cap, that has waited at least
        ``starve_after_seconds`` and fits ``slot.total_bytes``; None if none.
        """
        cutoff = now - self._starve_after
        assert slot.total_bytes is not None
        total = slot.total_bytes
        best: QueuedJob | None = None
        last = bisect.bisect_right(self._nonempty, _size_class(total))
        for size_class in self._nonempty[:last]:
            heap = self._age_heaps[size_class]
            while heap and heap[0][1] not in self._queued:
                heapq.heappop(heap)
            if not heap or heap[0][0] > cutoff:
                continue
            if best is not None and heap[0] >= (best.enqueued_at, best.id):
                continue
            # Walk this class in age order without popping, skipping capped tenants' jobs
            # (and, in the class that straddles ``total``, jobs that do not fit it).
            frontier = [(heap[0], 0)]
            while frontier:
                entry, position = heapq.heappop(frontier)
                if entry[0] > cutoff or (best is not None and entry >= (best.enqueued_at, best.id)):
                    break
                located = self._queued.get(entry[1])
                if located is not None:
                    tenant = self._tenants[located[0]]
                    job = tenant.classes[size_class].jobs[entry[1]]
                    if job.enqueued_at == entry[0] and tenant.eligible() and job.estimated_bytes <= total:
                        best = job
                        break
                for child in (2 * position + 1, 2 * position + 2):
                    if child < len(heap):
                        heapq.heappush(frontier, (heap[child], child))
        return best

    def _fair_head(self, slot: WorkerSlot, now: float) -> QueuedJob | None:
        """The job ``slot`` holds memory for, or None.

        The rule's choice among all waiting jobs that fit ``slot.total_bytes`` (as if the
        worker were empty).
        """
        assert slot.total_bytes is not None
        while True:
            best = self._best(slot.total_bytes)
            if best is None:
                return None
            tenant = self._tenants[best[2]]
            if tenant.rate > 0.0 and tenant.settled_at < now:
                self._settle(tenant, now)
                self._reindex(tenant)
                continue
            return tenant.classes[self._queued[best[3]][1]].jobs[best[3]]

    def _start(self, job: QueuedJob, slot: WorkerSlot, now: float) -> QueuedJob:
        tenant = self._tenants[job.tenant_id]
        removed = self.remove(job.id)
        assert removed is job
        rate = 1.0 if not slot.total_bytes else job.estimated_bytes / slot.total_bytes
        self._settle(tenant, now)
        tenant.rate += rate
        tenant.running_here += 1
        self._running[job.id] = (tenant.tenant_id, rate)
        if not tenant.eligible():
            self._reindex(tenant)
        return job

    def complete(self, job_id: UUID, now: float) -> None:
        """A job this queue started has finished (or failed): stop charging it, free its slot."""
        tenant_id, rate = self._running.pop(job_id)
        self._maybe_rebase(now)
        tenant = self._tenants[tenant_id]
        self._settle(tenant, now)
        tenant.running_here -= 1
        # Exact zero when idle, so float residue never keeps a tenant "running" forever.
        tenant.rate = tenant.rate - rate if tenant.running_here > 0 else 0.0
        self._reindex(tenant)

    # ---------------------------------------------------------------- internals: usage

    def _tenant(self, tenant_id: UUID) -> _Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Tenant(tenant_id, settled_at=self._epoch)
        return tenant

    def _scale(self, at: float) -> float:
        return math.exp2((at - self._epoch) / self._half_life)

    def _accrued(self, tenant: _Tenant, now: float) -> float:
        # Integral of rate * 2**((u - epoch) / half_life) du from settled_at to now.
        if tenant.rate <= 0.0 or now <= tenant.settled_at:
            return 0.0
        return tenant.rate * self._half_life / _LN2 * (self._scale(now) - self._scale(tenant.settled_at))

    def _settle(self, tenant: _Tenant, now: float) -> None:
        tenant.usage += self._accrued(tenant, now)
        tenant.settled_at = max(tenant.settled_at, now)

    def _maybe_rebase(self, now: float) -> None:
        if (now - self._epoch) / self._half_life < _REBASE_HALF_LIVES:
            return
        factor = 1.0 / self._scale(now)
        for tenant in self._tenants.values():
            self._settle(tenant, now)
            tenant.usage *= factor
        self._epoch = now
        self._class_heaps = [[] for _ in range(_NUM_CLASSES)]
        self._class_live = [0] * _NUM_CLASSES
        self._tree = [None] * (2 * _NUM_CLASSES)
        for tenant in self._tenants.values():
            tenant.entries.clear()
            self._reindex(tenant)

    # ---------------------------------------------------------------- internals: index

    def _reindex(self, tenant: _Tenant) -> None:
        for size_class in list(tenant.entries.keys() | tenant.classes.keys()):
            self._reindex_class(tenant, size_class)

    def _reindex_class(self, tenant: _Tenant, size_class: int) -> None:
        jobs = tenant.classes.get(size_class)
        oldest = jobs.oldest() if jobs is not None and tenant.eligible() else None
        old = tenant.entries.get(size_class)
        if oldest is None:
            if old is None:
                return
            del tenant.entries[size_class]
            self._class_live[size_class] -= 1
        else:
            entry = (tenant.usage / tenant.weight, oldest.enqueued_at, tenant.tenant_id, oldest.id)
            if entry == old:
                return
            tenant.entries[size_class] = entry
            if old is None:
                self._class_live[size_class] += 1
            heapq.heappush(self._class_heaps[size_class], entry)
        self._refresh_leaf(size_class)

    def _valid(self, size_class: int, entry: _Entry) -> bool:
        tenant = self._tenants.get(entry[2])
        return tenant is not None and tenant.entries.get(size_class) is entry

    def _refresh_leaf(self, size_class: int) -> None:
        heap = self._class_heaps[size_class]
        live = self._class_live[size_class]
        if len(heap) > 64 and len(heap) > 4 * live:
            heap = [e for e in heap if self._valid(size_class, e)]
            heapq.heapify(heap)
            self._class_heaps[size_class] = heap
        while heap and not self._valid(size_class, heap[0]):
            heapq.heappop(heap)
        top = heap[0] if heap else None
        tree = self._tree
        node = size_class + _NUM_CLASSES
        if tree[node] is top:
            return
        tree[node] = top
        node //= 2
        while node:
            left, right = tree[2 * node], tree[2 * node + 1]
            tree[node] = right if left is None else left if right is None or left <= right else right
            node //= 2

    def _prefix_min(self, end: int) -> _Entry | None:
        """Best entry over classes [0, end)."""
        best: _Entry | None = None
        tree = self._tree
        lo, hi = _NUM_CLASSES, end + _NUM_CLASSES
        while lo < hi:
            if lo & 1:
                candidate = tree[lo]
                if candidate is not None and (best is None or candidate < best):
                    best = candidate
                lo += 1
            if hi & 1:
                hi -= 1
                candidate = tree[hi]
                if candidate is not None and (best is None or candidate < best):
                    best = candidate
            lo //= 2
            hi //= 2
        return best

    def _best(self, free_bytes: int, spare: int | None = None, within: float | None = None) -> _Entry | None:
        """The rule's best entry among jobs that fit ``free_bytes``.

        With ``spare`` (a reserved head is waiting), only jobs of at most ``spare`` bytes, or
        expected to run at most ``within`` seconds, are allowed.
        """
        if free_bytes < 0:
            return None
        if spare is None:
            boundary = _size_class(free_bytes)
            return self._walk(boundary, self._prefix_min(boundary), lambda j: j.estimated_bytes <= free_bytes)
        small = min(free_bytes, spare)
        best: _Entry | None = None
        if small >= 0:
            boundary = _size_class(small)
            best = self._walk(boundary, self._prefix_min(boundary), lambda j: j.estimated_bytes <= small)
        if within is None or within <= 0 or free_bytes <= max(small, 0):
            return best

        def allowed(j: QueuedJob) -> bool:
            if j.estimated_bytes > free_bytes:
                return False
            return j.estimated_bytes <= small or (
                j.expected_seconds is not None and j.expected_seconds <= within
            )

        # Larger jobs that end in time: every class from the one straddling ``spare`` to the
        # one straddling ``free_bytes``, job by job.
        lo = bisect.bisect_left(self._nonempty, _size_class(max(small, 0)))
        hi = bisect.bisect_right(self._nonempty, _size_class(free_bytes))
        for size_class in self._nonempty[lo:hi]:
            best = self._walk(size_class, best, allowed)
        return best

    def _walk(
        self, size_class: int, best: _Entry | None, allowed: Callable[[QueuedJob], bool]
    ) -> _Entry | None:
        """``best`` improved by the jobs of ``size_class`` that are ``allowed``."""
        heap = self._class_heaps[size_class]
        if not heap:
            return best
        # Visit the class's heap in key order without popping (a frontier of heap
        # positions), stopping once no remaining entry can beat ``best``. An entry's key is a
        # lower bound for any of that tenant's allowed jobs in the class.
        frontier: list[tuple[_Entry, int]] = [(heap[0], 0)]
        while frontier:
            entry, position = heapq.heappop(frontier)
            if best is not None and entry >= best:
                break
            if self._valid(size_class, entry):
                tenant = self._tenants[entry[2]]
                job = tenant.classes[size_class].oldest_where(allowed)
                if job is not None:
                    candidate = (entry[0], job.enqueued_at, entry[2], job.id)
                    if best is None or candidate < best:
                        best = candidate
            for child in (2 * position + 1, 2 * position + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child], child))
        return best


# --------------------------------------------------------------------------- stateless pick


def pick_next(
    queued: Iterable[QueuedJob],
    slot: WorkerSlot,
    tenants: Iterable[TenantState],
    now: float,
    *,
    reserve: bool = True,
    starve_after_seconds: float = DEFAULT_STARVE_AFTER_SECONDS,
) -> QueuedJob | None:
    """The job ``slot`` should run next among ``queued``, by the same rule as ``FairQueue.pick``.

    ``tenants`` carries usage (decayed to ``now``), weights, caps and running counts; a tenant
    of a queued job that is missing from it counts as new (no usage, weight 1, no cap).
    ``queued`` should hold each tenant's oldest job that fits ``slot.free_bytes`` and the
    oldest starving jobs that fit ``slot.total_bytes`` (the reservation's candidates).
    Nothing is mutated: the caller records the start. O(k log k) for k candidates.
    """
    queue = FairQueue(now=now, reserve=reserve, starve_after_seconds=starve_after_seconds)
    for state in tenants:
        queue.load_tenant(state, now)
    for job in queued:
        queue.push(job)
    return queue.pick(slot, now)
