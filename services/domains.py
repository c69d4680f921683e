"""Verified email domains of an organization, proven with a DNS TXT record.

An owner claims a domain (`domain_add`); the page shows the TXT record to publish:
`_creative-studio.<domain>` with the value `creative-studio-verification=<token>`. "Verify
now" (`domain_verify`) asks DNS for that record and says exactly what it found when the check
fails. Once verified, addresses on the domain are routed to the organization's identity provider
(`services.sso`), and people signing in there may join it.

Invariants:
- A domain is verified for at most one organization: a partial unique index on `domain` where
  `verified_at` is set. Two organizations verifying the same domain at once: one wins, the
  other is told `domain_taken`.
- Claiming the same domain twice in one organization returns the existing claim (a double click
  acts once; `uq_org_domains_org_domain`).
- The DNS resolver is `DNS_NAMESERVERS` when set, else the system's; callers may pass their own
  (`resolver=`), which is how tests point it at a DNS server on loopback.
- Verified domains are checked again by a job (`domains_recheck_due`, every
  `RECHECK_INTERVAL`). A check that finds the record resets the count; one that does not adds
  one; after ``DOMAIN_RECHECK_FAILURES`` in a row the domain is unverified (`unverified_at`
  set, `last_error` saying why) and the owner reads it on the SSO page. DNS not answering
  counts for nothing. Two schedulers at once: each domain is claimed by a conditional update
  of `last_checked_at` (from the value read to now), so one check counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dns.exception
import dns.resolver
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core import db
from core.clock import utcnow
from core.crypto import new_token
from core.settings import get_settings
from models import OrgDomain, User
from services import policy
from services.audit import audit_record
from services.error_codes import Code
from services.errors import Conflict, DomainError, NotFound, ValidationFailed, error_with_code

RECORD_PREFIX = "_creative-studio"
VALUE_PREFIX = "creative-studio-verification="
DNS_LIFETIME_SECONDS = 5.0
RECHECK_INTERVAL = timedelta(hours=6)  # how often a verified domain's record is looked at again
MAX_DOMAINS_PER_ORG = 20
_MAX_DOMAIN_LENGTH = 253


@dataclass(frozen=True)
class DomainCheck:
    """The outcome of one "verify now": verified, or the reason it was not."""

    domain: str
    verified: bool
    message: str
    found: bool  # the record was published when checked just now


def txt_record_name(domain: str) -> str:
    return f"{RECORD_PREFIX}.{domain}"


def txt_record_value(token: str) -> str:
    return f"{VALUE_PREFIX}{token}"


def domain_normalize(domain: str) -> str:
    """A domain name as stored: lower-case, IDNA (xn--) form, no trailing dot.

    Raises:
        ValidationFailed: `domain_invalid`, naming what is wrong.
    """
    raw = (domain or "").strip().lower().rstrip(".")
    if raw.startswith("@"):
        raw = raw[1:]

    def invalid(why: str) -> DomainError:
        return error_with_code(
            Code.domain_invalid,
            f"“{(domain or '').strip()[:80]}” is not a domain name: {why}. Enter only the part "
            "after the @ of your work addresses, for example example.com.",
            base=ValidationFailed,
            field="domain",
        )

    if not raw:
        raise invalid("it is empty")
    if "://" in raw or "/" in raw or "@" in raw or " " in raw:
        raise invalid("it contains a scheme, a path, an @ or a space")
    try:
        ascii_name = raw.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid("it has characters a domain cannot have") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise invalid("it needs at least one dot")
    if len(ascii_name) > _MAX_DOMAIN_LENGTH:
        raise invalid("it is longer than 253 characters")
    for label in labels:
        if not label or len(label) > 63:
            raise invalid("each part between dots must have 1 to 63 characters")
        if label.startswith("-") or label.endswith("-"):
            raise invalid("a part cannot start or end with a dash")
        if not all(c.isalnum() or c == "-" for c in label):
            raise invalid("only letters, digits, dashes and dots are allowed")
    if labels[-1].isdigit():
        raise invalid("it looks like an IP address")
    return ascii_name


def email_domain(email: str) -> str:
    """The domain part of an address, normalised; "" when there is none or it is not valid."""
    _, _, domain = (email or "").strip().lower().rpartition("@")
    try:
        return domain_normalize(domain) if domain else ""
    except DomainError:
        return ""


# --- DNS --------------------------------------------------------------------------------------


def resolver_from_settings() -> dns.resolver.Resolver:
    """`DNS_NAMESERVERS` ("host" or "host:port", comma-separated) or the system resolver."""
    configured = [part.strip() for part in get_settings().dns_nameservers.split(",") if part]
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        hosts, port = [], 53
        for entry in configured:
            host, _, port_text = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            hosts.append(host)
            if port_text:
                port = int(port_text)
        resolver.nameservers = hosts
        resolver.port = port
    resolver.lifetime = DNS_LIFETIME_SECONDS
    return resolver


def _txt_values(name: str, resolver: dns.resolver.Resolver) -> list[str]:
    """The TXT strings at `name` ([] when the name or the record does not exist)."""
    try:
        answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (
        dns.resolver.NoNameservers,
        dns.exception.Timeout,
        dns.resolver.NoResolverConfiguration,
    ):
        raise error_with_code(
            Code.domain_dns_unavailable,
            f"DNS did not answer for {name}, so the domain could not be checked. Nothing "
            "changed. Try “Verify now” again in a minute.",
        ) from None
    except dns.exception.DNSException:
        raise error_with_code(
            Code.domain_dns_unavailable,
            f"DNS gave an unusable answer for {name}. Nothing changed. Try again in a minute.",
        ) from None
    values = []
    for record in answer.rrset or []:
        values.append(b"".join(record.strings).decode("utf-8", "replace"))
    return values


# --- claims -----------------------------------------------------------------------------------


def _require_manage(session: Session, actor: User, org_id: int) -> None:
    policy.require(
        policy.actor_for(session=session, user=actor, org_id=org_id),
        policy.Action.sso_manage,
        policy.target_for(session=session, org_id=org_id),
    )


def domains_list(*, session: Session, org_id: int) -> list[OrgDomain]:
    """The organization's claimed domains, verified ones first. The caller checks the policy."""
    rows = session.exec(select(OrgDomain).where(OrgDomain.org_id == org_id)).all()
    return sorted(rows, key=lambda row: (row.verified_at is None, row.domain))


def _verified_elsewhere(session: Session, domain: str, org_id: int) -> bool:
    return (
        session.exec(
            select(OrgDomain.id).where(
                OrgDomain.domain == domain,
                OrgDomain.org_id != org_id,
                OrgDomain.verified_at.is_not(None),  # type: ignore[union-attr]
            )
        ).first()
        is not None
    )


def _taken_error(domain: str) -> DomainError:
    return error_with_code(
        Code.domain_taken,
        f"{domain} is already verified by another organization, so it cannot be verified here. "
        "If your company owns it, ask that organization's owner to remove it, or contact support.",
        base=Conflict,
    )


def domain_add(*, session: Session, actor: User, org_id: int, domain: str) -> OrgDomain:
    """Claim a domain for the organization (not verified yet). Owner only. No commit.

    Returns the existing claim when this organization already has it.

    Raises:
        ValidationFailed: `domain_invalid`, or the organization has MAX_DOMAINS_PER_ORG.
        Conflict: `domain_taken` (verified by another organization).
    """
    _require_manage(session, actor, org_id)
    name = domain_normalize(domain)
    existing = session.exec(
        select(OrgDomain).where(OrgDomain.org_id == org_id, OrgDomain.domain == name)
    ).first()
    if existing is not None:
        return existing
    if _verified_elsewhere(session, name, org_id):
        raise _taken_error(name)
    count = len(session.exec(select(OrgDomain.id).where(OrgDomain.org_id == org_id)).all())
    if count >= MAX_DOMAINS_PER_ORG:
        raise error_with_code(
            Code.domain_invalid,
            f"An organization can claim up to {MAX_DOMAINS_PER_ORG} domains. Remove one you "
            "no longer use first.",
            base=ValidationFailed,
            field="domain",
        )
    row = OrgDomain(org_id=org_id, domain=name, verification_token=new_token(24))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same claim made at the same moment (double click)
        row = session.exec(
            select(OrgDomain).where(OrgDomain.org_id == org_id, OrgDomain.domain == name)
        ).one()
        return row
    audit_record(
        session=session,
        action="sso.domain_added",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_domain",
        target_id=row.id,
        details={"domain": name},
    )
    return row


def _domain_in_org(session: Session, org_id: int, domain_id: int) -> OrgDomain:
    row = session.exec(
        select(OrgDomain)
        .where(OrgDomain.id == domain_id, OrgDomain.org_id == org_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound("That domain is not in this organization any more. Reload the page.")
    return row


def domain_remove(*, session: Session, actor: User, org_id: int, domain_id: int) -> str:
    """Drop a claim (verified or not). Owner only. No commit. Returns the domain name."""
    _require_manage(session, actor, org_id)
    row = _domain_in_org(session, org_id, domain_id)
    name, was_verified = row.domain, row.verified_at is not None
    session.delete(row)
    session.flush()
    audit_record(
        session=session,
        action="sso.domain_removed",
        actor_user_id=actor.id,
        org_id=org_id,
        target_type="org_domain",
        target_id=domain_id,
        details={"domain": name, "was_verified": was_verified},
    )
    return name


def domain_verify(
    *,
    session: Session,
    actor: User,
    org_id: int,
    domain_id: int,
    resolver: dns.resolver.Resolver | None = None,
) -> DomainCheck:
    """Look for the TXT record now; record the outcome on the claim. Owner only. No commit.

    A failed check is an outcome, not an error: it is stored (`last_error`) and returned so the
    page can say what DNS had instead.

    Raises:
        DomainError: `domain_dns_unavailable` (DNS did not answer; nothing recorded),
            `domain_taken` (verified by another organization meanwhile).
    """
    _require_manage(session, actor, org_id)
    row = _domain_in_org(session, org_id, domain_id)
    name = txt_record_name(row.domain)
    expected = txt_record_value(row.verification_token)
    values = _txt_values(name, resolver or resolver_from_settings())
    now = utcnow()
    row.last_checked_at = now
    if expected in (value.strip() for value in values):
        if _verified_elsewhere(session, row.domain, org_id):
            raise _taken_error(row.domain)
        first_time, name = row.verified_at is None, row.domain
        session.flush()  # the check's time, outside the savepoint (begin_nested flushes first)
        try:
            with session.begin_nested():
                row.verified_at = row.verified_at or now
                row.last_error = ""
                row.recheck_failures = 0
                row.unverified_at = None
                session.add(row)
                session.flush()
        except IntegrityError:  # another organization verified it at the same moment
            raise _taken_error(name) from None
        if first_time:
            audit_record(
                session=session,
                action="sso.domain_verified",
                actor_user_id=actor.id,
                org_id=org_id,
                target_type="org_domain",
                target_id=row.id,
                details={"domain": row.domain},
            )
        return DomainCheck(row.domain, True, f"{row.domain} is verified.", True)
    if not values:
        reason = (
            f"No TXT record was found at {name}. Add a TXT record with the name {name} and the "
            f"value {expected} at your DNS provider, wait a few minutes for it to publish, then "
            "select “Verify now” again."
        )
    else:
        shown = ", ".join(f"“{value[:80]}”" for value in values[:3])
        reason = (
            f"{name} has {len(values)} TXT record{'s' if len(values) != 1 else ''} ({shown}) but "
            f"none is {expected}. Correct the value at your DNS provider, then select "
            "“Verify now” again."
        )
    row.last_error = reason[:500]
    if row.verified_at is not None:
        # A domain that was verified keeps working until it is removed; say the record is gone.
        row.last_error = ("The TXT record is no longer published. " + reason)[:500]
    session.add(row)
    session.flush()
    return DomainCheck(row.domain, row.verified_at is not None, row.last_error, False)


# --- the scheduled re-check -------------------------------------------------------------------


@dataclass
class RecheckResult:
    """What one pass of the re-check job did (`items` for the job recorder)."""

    checked: int = 0
    still_verified: int = 0
    failed_checks: int = 0
    unverified: list[str] = field(default_factory=list)
    dns_unavailable: int = 0
    skipped: int = 0  # claimed by another scheduler first

    @property
    def items(self) -> int:
        return self.checked

    @property
    def errors(self) -> int:
        return self.dns_unavailable

    @property
    def error_details(self) -> list[str]:
        if not self.dns_unavailable:
            return []
        return [f"DNS did not answer for {self.dns_unavailable} domain(s); checked next time."]


def _recheck_candidates(session: Session, cutoff, limit: int) -> list[tuple[int, Any]]:
    rows = session.exec(
        select(OrgDomain.id, OrgDomain.last_checked_at)
        .where(
            OrgDomain.verified_at.is_not(None),  # type: ignore[union-attr]
            or_(
                OrgDomain.last_checked_at.is_(None),  # type: ignore[union-attr]
                OrgDomain.last_checked_at < cutoff,  # type: ignore[operator]
            ),
        )
        .order_by(OrgDomain.last_checked_at, OrgDomain.id)
        .limit(limit)
    ).all()
    return [(row[0], row[1]) for row in rows]


def _claim(session: Session, domain_id: int, seen, now) -> bool:
    """Move `last_checked_at` from the value read to now; False if another process did first."""
    seen_test = (
        OrgDomain.last_checked_at.is_(None)  # type: ignore[union-attr]
        if seen is None
        else OrgDomain.last_checked_at == seen
    )
    result = session.exec(  # type: ignore[call-overload]
        update(OrgDomain)
        .where(
            OrgDomain.id == domain_id,
            OrgDomain.verified_at.is_not(None),  # type: ignore[union-attr]
            seen_test,
        )
        .values(last_checked_at=now)
    )
    session.commit()
    return result.rowcount == 1


def _recheck_one(
    session: Session, domain_id: int, resolver: dns.resolver.Resolver, now, limit: int
) -> str:
    """Check one claimed domain's record; "ok", "failed", "unverified" or "dns"."""
    row = session.get(OrgDomain, domain_id)
    if row is None or row.verified_at is None:
        return "ok"
    name, expected = txt_record_name(row.domain), txt_record_value(row.verification_token)
    try:
        values = _txt_values(name, resolver)
    except DomainError:
        session.rollback()
        return "dns"  # DNS did not answer: no evidence either way
    if expected in (value.strip() for value in values):
        session.exec(  # type: ignore[call-overload]
            update(OrgDomain)
            .where(OrgDomain.id == domain_id, OrgDomain.last_checked_at == now)
            .values(recheck_failures=0, last_error="")
        )
        session.commit()
        return "ok"
    # A failed check: counted in the same statement that reads the count (no lost update), and
    # only while the claim is still ours.
    session.exec(  # type: ignore[call-overload]
        update(OrgDomain)
        .where(OrgDomain.id == domain_id, OrgDomain.last_checked_at == now)
        .values(recheck_failures=OrgDomain.recheck_failures + 1)
    )
    session.flush()
    row = session.exec(
        select(OrgDomain)
        .where(OrgDomain.id == domain_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    failures, when = row.recheck_failures, now.strftime("%Y-%m-%d %H:%M UTC")
    if failures < limit:
        row.last_error = (
            f"The TXT record {name} with the value {expected} was not found in the scheduled "
            f"check of {when} ({failures} of {limit} failed checks in a row). The domain stays "
            f"verified for now; after {limit} failed checks it is marked unverified. Publish the "
            "record again at your DNS provider, then select “Verify now”."
        )[:500]
        session.add(row)
        session.commit()
        return "failed"
    domain = row.domain
    row.verified_at = None
    row.unverified_at = now
    row.last_error = (
        f"Marked unverified on {when}: the TXT record {name} was missing in {failures} scheduled "
        "checks in a row, so addresses on this domain no longer sign in through single sign-on "
        f"and “require SSO” no longer applies to them. Publish {expected} at {name} again, then "
        "select “Verify now”."
    )[:500]
    session.add(row)
    audit_record(
        session=session,
        action="sso.domain_unverified",
        actor_user_id=None,
        org_id=row.org_id,
        target_type="org_domain",
        target_id=row.id,
        details={"domain": domain, "failed_checks": failures, "by": "scheduled re-check"},
    )
    session.commit()
    return "unverified"


def domains_recheck_due(
    *,
    session: Session | None = None,
    resolver: dns.resolver.Resolver | None = None,
    batch: int = 200,
) -> RecheckResult:
    """Check the TXT record of verified domains not checked within `RECHECK_INTERVAL`.

    The job's service: owns its units of work (one per domain, so a slow DNS answer holds no
    transaction open). Safe with two schedulers: a domain is claimed before it is checked.
    """
    if session is None:
        with db.session_scope() as own:
            return domains_recheck_due(session=own, resolver=resolver, batch=batch)
    now = utcnow()
    limit = get_settings().domain_recheck_failures
    resolver = resolver or resolver_from_settings()
    result = RecheckResult()
    candidates = _recheck_candidates(session, now - RECHECK_INTERVAL, batch)
    session.rollback()
    for domain_id, seen in candidates:
        if not _claim(session, domain_id, seen, now):
            result.skipped += 1
            continue
        result.checked += 1
        outcome = _recheck_one(session, domain_id, resolver, now, limit)
        if outcome == "ok":
            result.still_verified += 1
        elif outcome == "dns":
            result.dns_unavailable += 1
        else:
            result.failed_checks += 1
            if outcome == "unverified":
                row = session.get(OrgDomain, domain_id)
                result.unverified.append(row.domain if row else str(domain_id))
                session.rollback()
    return result


def verified_domain_org_id(*, session: Session, email: str) -> int | None:
    """The organization that verified the domain of `email`, or None."""
    domain = email_domain(email)
    if not domain:
        return None
    return session.exec(
        select(OrgDomain.org_id).where(
            OrgDomain.domain == domain,
            OrgDomain.verified_at.is_not(None),  # type: ignore[union-attr]
        )
    ).first()


def domain_is_verified_for(*, session: Session, org_id: int, email: str) -> bool:
    """Whether the domain of `email` is verified by this organization."""
    return verified_domain_org_id(session=session, email=email) == org_id
