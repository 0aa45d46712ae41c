import pytest

from aibrain.api.quotas import WriteQuota
from aibrain.errors import ServiceError


async def test_write_quota_allows_up_to_the_event_budget():
    quota = WriteQuota(events_per_minute=3, bytes_per_day=0)
    for _ in range(3):
        await quota.charge("u1", 10)


async def test_write_quota_rejects_past_the_event_budget():
    quota = WriteQuota(events_per_minute=3, bytes_per_day=0)
    for _ in range(3):
        await quota.charge("u1", 10)
    with pytest.raises(ServiceError, match="budget of 3 events per minute") as caught:
        await quota.charge("u1", 10)
    assert caught.value.status == 429
    assert caught.value.code == "QUOTA_EXCEEDED"
    assert caught.value.headers["X-Quota-Events-Remaining"] == "0"
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60


async def test_write_quota_users_have_separate_budgets():
    quota = WriteQuota(events_per_minute=1, bytes_per_day=0)
    await quota.charge("u1", 10)
    await quota.charge("u2", 10)


async def test_write_quota_rejects_past_the_byte_budget():
    quota = WriteQuota(events_per_minute=0, bytes_per_day=100)
    await quota.charge("u1", 60)
    with pytest.raises(ServiceError, match="100 bytes per day") as caught:
        await quota.charge("u1", 60)
    assert caught.value.headers["X-Quota-Bytes-Remaining"] == "40"


async def test_write_quota_rejected_event_is_not_counted():
    quota = WriteQuota(events_per_minute=0, bytes_per_day=100)
    await quota.charge("u1", 60)
    with pytest.raises(ServiceError):
        await quota.charge("u1", 60)
    await quota.charge("u1", 40)


def test_write_quota_zero_budgets_disable_it():
    assert not WriteQuota(events_per_minute=0, bytes_per_day=0).enabled
