"""The retention job every service runs its rules with: each rule in batches until one comes
back short, what went counted in the metric, and a round with nothing due removes nothing."""

from __future__ import annotations

from prometheus_client import REGISTRY

from stolive_shared.retention import RetentionJob, RetentionRule


class Expired:
    """Records past their period, removed at most ``limit`` a batch."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.batches: list[int] = []

    async def remove(self, limit: int) -> int:
        done = min(limit, self.left)
        self.left -= done
        self.batches.append(done)
        return done


def counted(rule: str) -> float:
    value = REGISTRY.get_sample_value("stolive_retention_removed_total", {"rule": rule})
    return value or 0.0


async def test_each_rule_runs_in_batches_until_nothing_is_left() -> None:
    subscribers, mails = Expired(1_050), Expired(3)
    job = RetentionJob(
        [
            RetentionRule("unit_subscribers", subscribers.remove),
            RetentionRule("unit_mails", mails.remove),
        ],
        interval_s=3600,
        batch_size=500,
    )
    before = counted("unit_subscribers")
    assert await job.run_once() == {"unit_subscribers": 1_050, "unit_mails": 3}
    assert subscribers.batches == [500, 500, 50]
    assert mails.batches == [3]
    assert counted("unit_subscribers") - before == 1_050


async def test_a_full_last_batch_is_followed_by_one_that_finds_nothing() -> None:
    certificates = Expired(1_000)
    job = RetentionJob([RetentionRule("unit_certificates", certificates.remove)], 3600, 500)
    assert await job.run_once() == {"unit_certificates": 1_000}
    assert certificates.batches == [500, 500, 0]
    assert await job.run_once() == {"unit_certificates": 0}
