"""Fair-share scheduling: the rule's promises, and the index checked against a brute-force pick."""

from __future__ import annotations

import random
from collections import Counter
from uuid import UUID

import pytest

from service.jobs.scheduling import (
    DecayedUsage,
    FairQueue,
    QueuedJob,
    RunningJob,
    TenantState,
    WorkerSlot,
    add_decayed,
    decayed_value,
    pick_next,
    shadow,
)

GiB = 1 << 30
HOUR = 3600.0
A = UUID(int=0xA)
B = UUID(int=0xB)
C = UUID(int=0xC)
_ids = iter(range(1, 1 << 30))


def job(tenant: UUID, gib: float = 10, at: float = 0.0) -> QueuedJob:
    return QueuedJob(
        id=UUID(int=next(_ids)), tenant_id=tenant, estimated_bytes=int(gib * GiB), enqueued_at=at
    )


def run_serially(
    queue: FairQueue, start: float, picks: int, duration: float, gib: float = 80
) -> list[QueuedJob]:
    """One whole GPU: pick, run for ``duration``, complete, repeat."""
    now, taken = start, []
    for _ in range(picks):
        chosen = queue.pick(WorkerSlot(free_bytes=int(gib * GiB)), now)
        if chosen is None:
            break
        taken.append(chosen)
        now += duration
        queue.complete(chosen.id, now)
    return taken


def test_two_tenants_alternate_as_usage_accrues() -> None:
    queue = FairQueue()
    for i in range(5):
        queue.push(job(A, at=i))  # A's jobs are all older than B's
    for i in range(5):
        queue.push(job(B, at=10 + i))
    taken = run_serially(queue, start=100.0, picks=10, duration=60.0)
    assert [j.tenant_id for j in taken] == [A, B] * 5
    assert [j.enqueued_at for j in taken if j.tenant_id == A] == [0, 1, 2, 3, 4]  # oldest first
    assert len(queue) == 0 and queue.running_count == 0


def test_running_jobs_count_before_they_finish() -> None:
    queue = FairQueue()
    for i in range(3):
        queue.push(job(A, at=i))
    queue.push(job(B, at=50))
    first = queue.pick(WorkerSlot(free_bytes=80 * GiB), now=100.0)
    assert first is not None and first.tenant_id == A
    # A's job has been running for 10 s and B has used nothing: B goes next although A's
    # remaining jobs are older.
    second = queue.pick(WorkerSlot(free_bytes=80 * GiB), now=110.0)
    assert second is not None and second.tenant_id == B
    state = queue.tenant_state(A, now=110.0)
    assert state.running == 1 and state.recent_gpu_seconds == pytest.approx(10.0, rel=1e-3)


def test_heavy_tenant_does_not_starve_a_light_one() -> None:
    queue = FairQueue()
    for i in range(200):
        queue.push(job(A, at=i))
    queue.charge(A, 10 * HOUR, now=0.0)
    now = 1000.0
    taken = run_serially(queue, start=now, picks=5, duration=600.0)
    assert {j.tenant_id for j in taken} == {A}
    now += 5 * 600
    late = job(B, at=now)
    queue.push(late)
    assert queue.pick(WorkerSlot(free_bytes=80 * GiB), now=now + 1) == late


def test_weights_shift_the_share() -> None:
    queue = FairQueue()
    queue.configure_tenant(A, weight=2.0)
    for i in range(100):
        queue.push(job(A, at=i))
        queue.push(job(B, at=i + 0.5))
    shares = Counter(j.tenant_id for j in run_serially(queue, start=1000.0, picks=60, duration=60.0))
    assert shares[A] == 40 and shares[B] == 20


def test_concurrency_cap_is_honoured() -> None:
    queue = FairQueue()
    queue.configure_tenant(A, concurrency_cap=2)
    for i in range(5):
        queue.push(job(A, gib=6, at=i))
        queue.push(job(B, gib=6, at=100 + i))
    big = WorkerSlot(free_bytes=1000 * GiB)
    taken = [queue.pick(big, now=200.0) for _ in range(6)]
    assert [j.tenant_id for j in taken if j is not None] == [A, A, B, B, B, B]
    assert queue.tenant_state(A, 200.0).running == 2
    assert taken[0] is not None
    queue.complete(taken[0].id, now=300.0)
    # Below its cap again, A is next: one job-run of 100 s plus one of 100 s against B's four.
    nxt = queue.pick(big, now=300.0)
    assert nxt is not None and nxt.tenant_id == A


def test_concurrency_cap_from_stored_state() -> None:
    queued = [job(A, at=0), job(B, at=5)]
    tenants = [TenantState(A, recent_gpu_seconds=0.0, running=3, concurrency_cap=3), TenantState(B, 50.0)]
    chosen = pick_next(queued, WorkerSlot(free_bytes=80 * GiB), tenants, now=10.0)
    assert chosen is not None and chosen.tenant_id == B
    assert pick_next(queued[:1], WorkerSlot(free_bytes=80 * GiB), tenants, now=10.0) is None


def test_jobs_that_do_not_fit_are_skipped_for_a_smaller_one_of_the_same_tenant() -> None:
    queue = FairQueue()
    too_big = job(A, gib=20, at=0)
    small = job(A, gib=6, at=1)
    other = job(B, gib=8, at=0.5)
    for j in (too_big, small, other):
        queue.push(j)
    queue.charge(B, 100.0, now=0.0)
    assert queue.pick(WorkerSlot(free_bytes=10 * GiB), now=2.0) == small
    assert queue.remove(too_big.id) == too_big  # still waiting for a bigger slot


def test_jobs_that_do_not_fit_are_skipped_for_another_tenant() -> None:
    queue = FairQueue()
    queue.push(job(A, gib=40, at=0))
    queue.push(job(A, gib=20, at=1))
    fits = job(B, gib=8, at=2)
    queue.push(fits)
    queue.charge(B, 100.0, now=0.0)  # B is the heavier tenant, but A has nothing that fits
    assert queue.pick(WorkerSlot(free_bytes=10 * GiB), now=3.0) == fits
    assert queue.pick(WorkerSlot(free_bytes=10 * GiB), now=3.0) is None
    exact = queue.pick(WorkerSlot(free_bytes=20 * GiB), now=3.0)  # equal size fits
    assert exact is not None and exact.estimated_bytes == 20 * GiB


def test_decay_halves_usage_after_one_half_life() -> None:
    usage = DecayedUsage()  # default half-life: one hour
    usage.add(100.0, now=1000.0)
    assert usage.value(1000.0) == 100.0
    assert usage.value(1000.0 + HOUR) == pytest.approx(50.0)
    assert usage.value(1000.0 + 2 * HOUR) == pytest.approx(25.0)
    usage.add(50.0, now=1000.0 + HOUR)
    assert usage.value(1000.0 + 2 * HOUR) == pytest.approx(50.0)

    # The two-column form the database stores.
    value, at = add_decayed(0.0, 0.0, 100.0, now=0.0, half_life_seconds=60.0)
    assert decayed_value(value, at, now=60.0, half_life_seconds=60.0) == pytest.approx(50.0)
    # A charge dated before the stored time is decayed to it rather than moving time back.
    assert add_decayed(100.0, 60.0, 100.0, now=0.0, half_life_seconds=60.0) == pytest.approx((150.0, 60.0))
    assert decayed_value(100.0, 60.0, now=0.0, half_life_seconds=60.0) == 100.0

    queue = FairQueue()
    queue.charge(A, 100.0, now=0.0)
    assert queue.tenant_state(A, now=HOUR).recent_gpu_seconds == pytest.approx(50.0)


def test_ties_are_deterministic() -> None:
    first, second = job(B, at=5.0), job(A, at=5.0)
    for order in ((first, second), (second, first)):
        queue = FairQueue()
        for j in order:
            queue.push(j)
        # Same usage, same wait: the lower tenant id.
        assert queue.pick(WorkerSlot(free_bytes=80 * GiB), now=10.0) == second
    # Same usage, different waits: the tenant whose oldest fitting job waited longest.
    older = job(C, at=1.0)
    assert pick_next([first, second, older], WorkerSlot(free_bytes=80 * GiB), [], now=10.0) == older
    # The oldest job that does not fit does not count toward the wait.
    big_old = job(A, gib=70, at=0.0)
    chosen = pick_next([big_old, first, older], WorkerSlot(free_bytes=30 * GiB), [], now=10.0)
    assert chosen == older


def test_pick_next_is_the_same_rule() -> None:
    queued = [job(A, at=0), job(A, at=1), job(B, at=2), job(C, gib=50, at=3)]
    tenants = [TenantState(A, 500.0), TenantState(B, 900.0, weight=3.0)]  # C is new: no usage
    slot = WorkerSlot(free_bytes=48 * GiB)
    assert pick_next(queued, slot, tenants, now=10.0) == queued[2]  # B: 300 weighted < A: 500
    assert pick_next(queued, WorkerSlot(free_bytes=50 * GiB), tenants, now=10.0) == queued[3]
    assert pick_next([], slot, tenants, now=10.0) is None


def test_usage_survives_rebasing_the_clock() -> None:
    queue = FairQueue(half_life_seconds=1.0)
    queue.push(job(A, at=0))
    queue.push(job(B, at=0))
    queue.charge(A, 8.0, now=0.0)
    for step in range(1, 4):  # far past the rebase threshold each time
        now = step * 1000.0
        queue.charge(B, 4.0, now=now)
        queue.charge(A, 8.0, now=now)
        assert queue.tenant_state(A, now).recent_gpu_seconds == pytest.approx(8.0)
        assert queue.tenant_state(B, now).recent_gpu_seconds == pytest.approx(4.0)
    chosen = queue.pick(WorkerSlot(free_bytes=80 * GiB), now=3000.0)
    assert chosen is not None and chosen.tenant_id == B


def test_matches_a_brute_force_pick_under_random_operations() -> None:
    """The index against the rule written the obvious way (O(all jobs) per pick)."""
    rng = random.Random(7)
    tenants = [UUID(int=i) for i in range(1, 13)]
    caps = {t: rng.choice([None, None, 1, 2, 3]) for t in tenants}
    weights = {t: rng.choice([1.0, 1.0, 2.0, 0.5]) for t in tenants}
    queue = FairQueue(half_life_seconds=600.0, reserve=False)  # the rule alone
    for t in tenants:
        queue.configure_tenant(t, weight=weights[t], concurrency_cap=caps[t])
    waiting: dict[UUID, QueuedJob] = {}
    running: list[QueuedJob] = []
    now = 0.0
    picks = 0
    for _ in range(3000):
        now += rng.expovariate(1.0)
        action = rng.random()
        if action < 0.4:
            # Arbitrary byte sizes, so the class straddling the free memory gets exercised.
            size = rng.choice([rng.randrange(1, 80 * GiB), 6 * GiB, 10 * GiB, 20 * GiB])
            new = QueuedJob(UUID(int=next(_ids)), rng.choice(tenants), size, float(int(now)))
            queue.push(new)
            waiting[new.id] = new
        elif action < 0.75:
            free = rng.choice([rng.randrange(0, 80 * GiB), 10 * GiB, 20 * GiB])
            states = {t: queue.tenant_state(t, now) for t in tenants}
            fitting = [
                j
                for j in waiting.values()
                if j.estimated_bytes <= free
                and (caps[j.tenant_id] is None or states[j.tenant_id].running < (caps[j.tenant_id] or 0))
            ]
            expected = min(
                fitting,
                key=lambda j: (
                    states[j.tenant_id].recent_gpu_seconds / weights[j.tenant_id],
                    j.enqueued_at,
                    j.tenant_id,
                    j.id,
                ),
                default=None,
            )
            total = rng.choice([None, 80 * GiB])
            assert queue.pick(WorkerSlot(free_bytes=free, total_bytes=total), now) == expected
            if expected is not None:
                picks += 1
                del waiting[expected.id]
                running.append(expected)
        elif action < 0.9 and running:
            queue.complete(running.pop(rng.randrange(len(running))).id, now)
        elif action < 0.95 and waiting:
            gone = rng.choice(list(waiting))
            assert queue.remove(gone) == waiting.pop(gone)
        else:
            queue.charge(rng.choice(tenants), rng.uniform(0, 100), now)
    assert len(queue) == len(waiting) and queue.running_count == len(running)
    assert picks > 300


# --------------------------------------------------------------------------- reservation

CARD = 80 * GiB


def test_the_fair_choice_that_does_not_fit_gets_a_reservation() -> None:
    queue = FairQueue()
    big = job(A, gib=70, at=0)  # A has used nothing: its job is the fair choice
    queue.push(big)
    small = [job(B, gib=6, at=1 + i) for i in range(3)]
    long_mid = QueuedJob(UUID(int=next(_ids)), B, 20 * GiB, 5.0, expected_seconds=3600.0)
    short_mid = QueuedJob(UUID(int=next(_ids)), B, 20 * GiB, 6.0, expected_seconds=300.0)
    for j in (*small, long_mid, short_mid):
        queue.push(j)
    queue.charge(B, 10 * HOUR, now=0.0)
    now = 100.0
    # 30 GiB in use, ending in 600 s: the head fits at now + 600 with 10 GiB to spare.
    running = (RunningJob(30 * GiB, now + 600.0),)
    slot = WorkerSlot(free_bytes=50 * GiB, total_bytes=CARD, running=running)
    assert queue.reserved_head(slot, now) == big
    # Without the reservation B's oldest fitting job would run; with it, only jobs that do
    # not delay the head: a 6 GiB job fits in the spare 10 GiB ...
    first = queue.pick(slot, now)
    assert first == small[0]
    running += (RunningJob(6 * GiB, None),)
    slot = WorkerSlot(free_bytes=44 * GiB, total_bytes=CARD, running=running)
    # ... a second one would not (4 GiB spare left), nor the 20 GiB job that runs an hour;
    # the 20 GiB job that ends before the shadow time may.
    assert queue.pick(slot, now) == short_mid
    running += (RunningJob(20 * GiB, now + 300.0),)
    slot = WorkerSlot(free_bytes=24 * GiB, total_bytes=CARD, running=running)
    assert queue.pick(slot, now) is None
    # Once the memory is free the head runs, ahead of B's remaining 20 GiB job.
    assert (
        queue.pick(WorkerSlot(free_bytes=74 * GiB, total_bytes=CARD, running=running[1:2]), now + 600) == big
    )


def test_without_expected_ends_the_worker_drains() -> None:
    queue = FairQueue()
    big = job(A, gib=70, at=0)
    queue.push(big)
    queue.push(job(B, gib=6, at=1))
    queue.charge(B, HOUR, now=0.0)
    # 20 GiB in use for an unknown time: nothing else may start here, the head does not fit.
    assert queue.pick(WorkerSlot(free_bytes=60 * GiB, total_bytes=CARD), now=10.0) is None
    # A worker too small for the head is unaffected.
    other = queue.pick(WorkerSlot(free_bytes=24 * GiB, total_bytes=24 * GiB), now=10.0)
    assert other is not None and other.tenant_id == B
    assert queue.pick(WorkerSlot(free_bytes=CARD, total_bytes=CARD), now=20.0) == big
    # Without total_bytes (or with reserve=False) the rule alone decides, as before.
    plain = FairQueue(reserve=False)
    plain.push(job(A, gib=70, at=0))
    taken = job(B, gib=6, at=1)
    plain.push(taken)
    assert plain.pick(WorkerSlot(free_bytes=60 * GiB, total_bytes=CARD), now=10.0) == taken


def test_a_starving_job_goes_first_oldest_first() -> None:
    queue = FairQueue(starve_after_seconds=HOUR)
    old_big = job(A, gib=70, at=0)
    newer_big = job(C, gib=70, at=10)
    for j in (old_big, newer_big):
        queue.push(j)
    queue.charge(A, 100 * HOUR, now=0.0)  # A is the heaviest tenant: not the fair choice
    queue.charge(C, 50 * HOUR, now=0.0)
    light = job(B, gib=6, at=HOUR)
    queue.push(light)
    full = WorkerSlot(free_bytes=CARD, total_bytes=CARD)
    # Not yet starving: the fair rule (B, then C as the lighter of A and C).
    assert queue.pick(full, now=HOUR - 1) == light
    slot = WorkerSlot(free_bytes=CARD, total_bytes=CARD)
    queue.push(job(B, gib=6, at=HOUR))
    # Both have waited an hour: the oldest runs first, whatever the usage.
    assert queue.pick(slot, now=HOUR + 20) == old_big
    assert queue.pick(slot, now=HOUR + 20) == newer_big
    # A capped tenant's starving job is skipped (it could not start anyway).
    capped = FairQueue(starve_after_seconds=0.0)
    capped.configure_tenant(A, concurrency_cap=0)
    capped.push(job(A, gib=70, at=0))
    free_job = job(C, gib=70, at=5)
    capped.push(free_job)
    assert capped.reserved_head(full, now=10.0) == free_job


def test_backfill_never_delays_the_reserved_job() -> None:
    """Random workers and queues: whatever a reserving worker starts, the head's start does not move."""
    rng = random.Random(11)
    checked = 0
    for _ in range(400):
        queue = FairQueue(starve_after_seconds=rng.choice([0.0, 100.0, 1e9]))
        now = 1000.0
        for t in (A, B, C):
            queue.charge(t, rng.uniform(0, 100), now=0.0)
        for _ in range(rng.randrange(1, 12)):
            size = rng.choice([6, 10, 20, 40, 70, rng.uniform(1, 80)])
            expected = rng.choice([None, rng.uniform(10, 2000)])
            queue.push(
                QueuedJob(
                    UUID(int=next(_ids)),
                    rng.choice([A, B, C]),
                    int(size * GiB),
                    rng.uniform(0, now),
                    expected,
                )
            )
        running: list[RunningJob] = []
        used = 0
        for _ in range(rng.randrange(0, 6)):
            size = int(rng.uniform(1, 30) * GiB)
            if used + size <= CARD:
                used += size
                running.append(RunningJob(size, rng.choice([None, now + rng.uniform(-50, 1500)])))
        for _ in range(5):
            slot = WorkerSlot(free_bytes=CARD - used, total_bytes=CARD, running=tuple(running))
            head = queue.reserved_head(slot, now)
            chosen = queue.pick(slot, now)
            if chosen is None:
                break
            assert chosen.estimated_bytes <= slot.free_bytes
            if head is not None and chosen != head:
                checked += 1
                before = shadow(slot, head.estimated_bytes, now)[0]
                end = None if chosen.expected_seconds is None else now + chosen.expected_seconds
                running.append(RunningJob(chosen.estimated_bytes, end))
                used += chosen.estimated_bytes
                after_slot = WorkerSlot(free_bytes=CARD - used, total_bytes=CARD, running=tuple(running))
                assert shadow(after_slot, head.estimated_bytes, now)[0] <= before
            else:
                running.append(RunningJob(chosen.estimated_bytes, None))
                used += chosen.estimated_bytes
    assert checked > 50
