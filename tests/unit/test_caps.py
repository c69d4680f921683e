"""Daily caps: per organization and UTC day, counted once per key, given back once."""

from datetime import UTC, datetime

import pytest

from core.clock import freeze
from services.caps import Cap, DailyCapReached, cap_release, cap_status, cap_take, resets_in
from tests.factories import make_org, make_user


@pytest.fixture
def org(session):
    owner = make_user(session, "owner@example.com")
    org = make_org(session, owner)
    session.commit()
    return org


def test_free_plan_allows_twenty_messages_then_names_cap_plan_and_reset(session, org):
    freeze(datetime(2026, 11, 26, 20, 48, tzinfo=UTC))
    for index in range(20):
        cap_take(
            session=session, org_id=org.id, cap=Cap.assistant_messages, idempotency_key=f"m{index}"
        )
    with pytest.raises(DailyCapReached) as refused:
        cap_take(session=session, org_id=org.id, cap=Cap.assistant_messages, idempotency_key="m20")
    error = refused.value
    assert error.code == "daily_cap_reached"
    assert (error.used, error.allowed, error.plan, error.limit) == (
        20,
        20,
        "free",
        "assistant_messages",
    )
    assert "20 of 20 Marketing Assistant messages" in error.message
    assert "Free" in error.message and "00:00 UTC, in 3 h 12 min" in error.message
    assert "Upgrade in Billing" in error.message
    assert error.resets_at == datetime(2026, 11, 27, tzinfo=UTC)
    assert cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages).used == 20


def test_status_line_before_the_cap_is_hit(session, org):
    freeze(datetime(2026, 11, 26, 20, 48, tzinfo=UTC))
    for index in range(6):
        cap_take(
            session=session, org_id=org.id, cap=Cap.assistant_messages, idempotency_key=f"k{index}"
        )
    status = cap_status(session=session, org_id=org.id, cap=Cap.assistant_messages)
    assert status.describe() == "14 of 20 messages left today · resets at 00:00 UTC, in 3 h 12 min"


def test_retried_take_counts_once_and_release_gives_back_once(session, org):
    for _ in range(3):
        cap_take(session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="r1")
    assert cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used == 1
    assert cap_release(session=session, idempotency_key="r1") is True
    assert cap_release(session=session, idempotency_key="r1") is False
    assert cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used == 0
    assert cap_release(session=session, idempotency_key="never-taken") is False


def test_cap_resets_at_midnight_utc_not_24_hours_after_first_use(session, org):
    freeze(datetime(2026, 11, 26, 23, 0, tzinfo=UTC))
    for index in range(3):
        cap_take(
            session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key=f"a{index}"
        )
    with pytest.raises(DailyCapReached):
        cap_take(session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="a3")
    freeze(datetime(2026, 11, 27, 0, 0, 1, tzinfo=UTC))  # one hour later, a new UTC day
    status = cap_take(
        session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="b0"
    )
    assert (status.used, status.allowed) == (1, 3)


def test_release_after_midnight_returns_the_unit_to_the_day_it_came_from(session, org):
    freeze(datetime(2026, 11, 26, 23, 59, tzinfo=UTC))
    cap_take(session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="late")
    freeze(datetime(2026, 11, 27, 0, 1, tzinfo=UTC))
    cap_take(session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="early")
    assert cap_release(session=session, idempotency_key="late") is True
    assert cap_status(session=session, org_id=org.id, cap=Cap.competitor_reports).used == 1


def test_refused_take_leaves_no_trace_so_a_later_retry_can_succeed(session, org):
    freeze(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    for index in range(3):
        cap_take(
            session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key=f"x{index}"
        )
    with pytest.raises(DailyCapReached):
        cap_take(session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="x3")
    cap_release(session=session, idempotency_key="x0")
    status = cap_take(
        session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key="x3"
    )
    assert status.used == 3


def test_unlimited_plan_counts_without_refusing(session):
    owner = make_user(session, "growth@example.com")
    org = make_org(session, owner, plan_key="growth")
    for index in range(30):
        status = cap_take(
            session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key=f"g{index}"
        )
    assert status.unlimited and status.used == 30 and status.remaining is None
    assert "Unlimited reports on Growth" in status.describe()


def test_caps_are_per_organization(session, org):
    other = make_org(session, make_user(session, "other@example.com"), name="Other Co")
    for index in range(3):
        cap_take(
            session=session, org_id=org.id, cap=Cap.competitor_reports, idempotency_key=f"o{index}"
        )
    status = cap_take(
        session=session, org_id=other.id, cap=Cap.competitor_reports, idempotency_key="p0"
    )
    assert status.used == 1


def test_resets_in_rounds_up_to_the_minute():
    now = datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)
    assert resets_in(datetime(2026, 11, 27, tzinfo=UTC), now) == "resets at 00:00 UTC, in 1 min"
