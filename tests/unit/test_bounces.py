"""What a refusal says about an address, when bounces suppress it, when a dead sender's rows
may be taken back, and that an accepted mailing recipient is recorded before its lane goes on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from sto_notifications.bounces import BouncePolicy, classify
from sto_notifications.service.claims import Orphans
from sto_notifications.service.lanes import GroupedMarks


class TestARefusal:
    @pytest.mark.parametrize("code", [550, 551, 552, 553, 554])
    def test_a_5xx_is_a_hard_bounce_at_once(self, code: int) -> None:
        assert classify(code, last_attempt=False) == "hard"

    def test_a_4xx_is_no_bounce_while_it_will_be_retried(self) -> None:
        assert classify(451, last_attempt=False) is None

    def test_a_4xx_still_given_on_the_last_attempt_is_a_soft_bounce(self) -> None:
        assert classify(452, last_attempt=True) == "soft"

    def test_no_answer_at_all_is_never_the_recipients_bounce(self) -> None:
        assert classify(None, last_attempt=True) is None


class TestThresholds:
    policy = BouncePolicy(hard_limit=1, soft_limit=3, window=timedelta(days=30))

    def test_one_hard_bounce_suppresses(self) -> None:
        assert self.policy.suppresses(hard=1, soft=0)

    def test_soft_bounces_suppress_only_from_the_third(self) -> None:
        assert not self.policy.suppresses(hard=0, soft=2)
        assert self.policy.suppresses(hard=0, soft=3)


class TestRowsOfADeadSender:
    def test_anothers_rows_wait_out_the_grace_from_when_its_death_was_first_seen(self) -> None:
        now = [100.0]
        orphans = Orphans(grace_s=20, clock=lambda: now[0])
        assert orphans.due({7}, set()) == []
        now[0] = 119.0
        assert orphans.due({7, 8}, set()) == []
        now[0] = 120.0
        assert orphans.due({7, 8}, set()) == [7]

    def test_our_own_earlier_keys_are_due_at_once(self) -> None:
        orphans = Orphans(grace_s=20, clock=lambda: 0.0)
        assert orphans.due({7, 9}, {9}) == [9]

    def test_a_key_seen_alive_again_starts_its_wait_anew(self) -> None:
        now = [0.0]
        orphans = Orphans(grace_s=20, clock=lambda: now[0])
        orphans.due({7}, set())
        now[0] = 10.0
        orphans.due(set(), set())
        now[0] = 25.0
        assert orphans.due({7}, set()) == []


class TestMarksOfAcceptedRecipients:
    async def test_each_lane_returns_only_once_its_own_id_is_written_in_few_writes(self) -> None:
        written: list[list[uuid.UUID]] = []

        async def write(ids: list[uuid.UUID]) -> None:
            await asyncio.sleep(0.01)
            written.append(list(ids))

        marks = GroupedMarks(write)
        ids = [uuid.uuid4() for _ in range(8)]

        async def lane(recipient: uuid.UUID) -> None:
            await marks.record(recipient)
            assert any(recipient in batch for batch in written), "recorded before going on"

        await asyncio.gather(*(lane(i) for i in ids))
        assert sorted(i for batch in written for i in batch) == sorted(ids)
        assert len(written) < len(ids), "marks of lanes finishing together share a write"

    async def test_ids_whose_write_failed_are_kept_to_be_written_later(self) -> None:
        async def write(_ids: list[uuid.UUID]) -> None:
            raise ConnectionResetError("PostgreSQL went away")

        marks = GroupedMarks(write)
        recipient = uuid.uuid4()
        with pytest.raises(ConnectionResetError):
            await marks.record(recipient)
        assert marks.unwritten == [recipient]
