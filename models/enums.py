"""Enumerations shared by tables, services and the UI (stored as their string values)."""

from __future__ import annotations

from enum import StrEnum


class OrgRole(StrEnum):
    owner = "owner"
    admin = "admin"
    editor = "editor"
    viewer = "viewer"


class SubscriptionStatus(StrEnum):
    active = "active"
    trialing = "trialing"
    past_due = "past_due"
    unpaid = "unpaid"
    canceled = "canceled"
    expired = "expired"
    incomplete = "incomplete"


# Statuses under which runs are allowed; every other status keeps read access only.
EXECUTABLE_SUBSCRIPTION_STATUSES = frozenset(
    {SubscriptionStatus.active, SubscriptionStatus.trialing, SubscriptionStatus.past_due}
)
# Statuses under which tools run. A past-due subscription is still live (Stripe retries the
# payment and the owner can fix it) but runs wait until it is paid; reading stays.
RUNNABLE_SUBSCRIPTION_STATUSES = frozenset({SubscriptionStatus.active, SubscriptionStatus.trialing})


class InviteStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"
    expired = "expired"
    superseded = "superseded"  # replaced by a resend


class EmailTokenPurpose(StrEnum):
    verify_email = "verify_email"
    reset_password = "reset_password"


class LedgerEntryKind(StrEnum):
    grant = "grant"
    purchase = "purchase"
    hold = "hold"
    settle = "settle"
    release = "release"
    refund = "refund"
    adjustment = "adjustment"
    expiry = "expiry"
    pool_allocate = "pool_allocate"
    pool_return = "pool_return"


class Modality(StrEnum):
    text = "text"
    image = "image"
    video = "video"


class RateUnit(StrEnum):
    per_1k_tokens = "per_1k_tokens"
    per_asset = "per_asset"
    per_second = "per_second"


class ModelStatus(StrEnum):
    active = "active"
    disabled = "disabled"
    swapped = "swapped"


class GenerationStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ConnectionStatus(StrEnum):
    active = "active"
    expired = "expired"
    revoked = "revoked"


class TicketStatus(StrEnum):
    open = "open"
    pending = "pending"
    resolved = "resolved"


class JobRunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
