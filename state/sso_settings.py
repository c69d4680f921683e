"""/org/<slug>/settings/sso: Settings > Security & SSO (owners).

Single sign-on with the organization's OpenID provider (issuer, client ID, secret, the default
role of people who join through it), its test, turning it on and "require SSO"; verified email
domains (the DNS TXT record and "verify now"); "require 2FA". Every handler goes through the
org-page skeleton with `Action.sso_manage`; the client secret never enters this state (only
whether one is saved).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import reflex as rx

from core import routes
from core.clock import as_utc
from services import domains as domain_service
from services import policy
from services import sso as sso_service
from services.error_codes import Code
from state.navigation import backend_url, navigate
from state.org_page import Acting, OrgPageState, bounded, browser_id, form_fields

Action = policy.Action

ROLE_OPTIONS: tuple[tuple[str, str], ...] = (
    ("admin", "Admin"),
    ("editor", "Editor"),
    ("viewer", "Viewer"),
)
# One more than the services accept, so an over-long paste is refused with their message.
MAX_ISSUER_INPUT = 501
MAX_CLIENT_ID_INPUT = 256
MAX_SECRET_INPUT = 601
MAX_DOMAIN_INPUT = 254
_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


@dataclass
class DomainRow:
    domain_id: int
    domain: str
    verified: bool
    status: str  # "Verified" | "Not verified"
    record_name: str
    record_value: str
    problem: str  # why the last check failed ("" when none)
    checked: str
    warning: bool = False  # verified, but the scheduled re-check misses its record


def _when(moment) -> str:
    return as_utc(moment).strftime(_TIME_FORMAT) if moment is not None else ""


def _domain_status(domain) -> str:
    if domain.verified_at is not None:
        return "Verified, record missing" if domain.recheck_failures else "Verified"
    return "Unverified by DNS check" if domain.unverified_at is not None else "Not verified"


def _domains_alert(claimed) -> str:
    """One sentence for the top of the card when the DNS re-check found a record gone."""
    lost = [d.domain for d in claimed if d.verified_at is None and d.unverified_at is not None]
    failing = [d.domain for d in claimed if d.verified_at is not None and d.recheck_failures]
    parts = []
    if lost:
        parts.append(
            f"{', '.join(lost)} {'is' if len(lost) == 1 else 'are'} no longer verified: the "
            "scheduled DNS check stopped finding the TXT record, so addresses there no longer "
            "sign in through single sign-on."
        )
    if failing:
        parts.append(
            f"The TXT record of {', '.join(failing)} was missing in the latest scheduled DNS "
            "check; the domain stays verified until a few checks in a row fail."
        )
    if parts:
        parts.append("Publish the record shown below again, then select “Verify now”.")
    return " ".join(parts)


class SsoSettingsState(OrgPageState, rx.State):
    redirect_uri: str = ""
    issuer: str = ""
    client_id: str = ""
    secret_saved: bool = False
    default_role: str = "editor"
    sso_enabled: bool = False
    require_sso: bool = False
    require_2fa: bool = False
    _tested: bool = False
    tested_line: str = ""  # "Tested 2026-11-26 10:00 UTC as ada@example.com"
    test_problem: str = ""  # why the last test failed, when it did after the last success
    _members_without_2fa: list[str] = []
    domains: list[DomainRow] = []
    has_verified_domain: bool = False
    # Domains the scheduled DNS re-check unverified (or is about to): said at the top of the card.
    domains_alert: str = ""
    org_address: str = ""
    section: str = ""  # which card `error` and `notice` belong to

    # --- the skeleton's hooks --------------------------------------------------------------

    def _view_action(self) -> policy.Action:
        return Action.sso_manage

    def _refresh(self, acting: Acting) -> None:
        session, org = acting.session, acting.org
        self.org_address = org.slug
        self.redirect_uri = sso_service.sso_redirect_uri()
        row = sso_service.org_security_get(session=session, org_id=org.id)
        self.issuer = row.sso_issuer if row else ""
        self.client_id = row.sso_client_id if row else ""
        self.secret_saved = bool(row and row.sso_client_secret_encrypted)
        self.default_role = row.sso_default_role if row else "editor"
        self.sso_enabled = bool(row and row.sso_enabled)
        self.require_sso = bool(row and row.require_sso)
        self.require_2fa = bool(row and row.require_2fa)
        self._tested = bool(row and row.sso_tested_at)
        self.tested_line = (
            f"Test sign-in succeeded {_when(row.sso_tested_at)}"
            + (f" as {row.sso_tested_email}" if row.sso_tested_email else "")
            + "."
            if row and row.sso_tested_at
            else ""
        )
        failed_last = bool(
            row
            and row.sso_last_test_error
            and (row.sso_tested_at is None or row.sso_last_test_at > row.sso_tested_at)
        )
        self.test_problem = (
            f"Last test ({_when(row.sso_last_test_at)}) failed: "
            + sso_service.sso_test_failure_message(row.sso_last_test_error, row.sso_issuer)
            if failed_last
            else ""
        )
        self._members_without_2fa = sso_service.members_without_2fa(session=session, org_id=org.id)
        claimed = domain_service.domains_list(session=session, org_id=org.id)
        self.domains = [
            DomainRow(
                domain_id=d.id,
                domain=d.domain,
                verified=d.verified_at is not None,
                status=_domain_status(d),
                record_name=domain_service.txt_record_name(d.domain),
                record_value=domain_service.txt_record_value(d.verification_token),
                problem=d.last_error,
                checked=_when(d.last_checked_at),
                warning=d.verified_at is not None and d.recheck_failures > 0,
            )
            for d in claimed
        ]
        self.has_verified_domain = any(d.verified for d in self.domains)
        self.domains_alert = _domains_alert(claimed)

    # --- events ----------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self.section = ""
        opened = await self._open()
        if opened.acting is None:
            return opened.elsewhere
        outcome = bounded(self.router.url.query_parameters.get("test", ""), 64)
        if outcome == "ok":
            self.section = "sso"
            self.notice = (
                "Test sign-in succeeded: the identity provider signed you in and its answer "
                "checked out. You can turn single sign-on on."
            )
        elif outcome:
            self.section = "sso"
            self.error_code = outcome
            self.error = self.test_problem or sso_service.sso_test_failure_message(
                outcome, self.issuer
            )

    @rx.event
    async def save_settings(self, form: dict):
        form = form_fields(form)
        self.section = "sso"
        await self._act(
            Action.sso_manage,
            lambda a: sso_service.sso_settings_save(
                session=a.session,
                actor=a.user,
                org_id=a.org.id,
                issuer=bounded(form.get("issuer", ""), MAX_ISSUER_INPUT),
                client_id=bounded(form.get("client_id", ""), MAX_CLIENT_ID_INPUT),
                client_secret=bounded(form.get("client_secret", ""), MAX_SECRET_INPUT),
                default_role=bounded(form.get("default_role", "") or self.default_role, 16),
            ),
            success=lambda row: (
                "Saved. Select “Test connection”, then “Test sign-in” before turning single "
                "sign-on on."
                if row.sso_tested_at is None
                else "Saved."
            ),
        )

    @rx.event
    def set_default_role(self, value: Any):
        value = bounded(value, 16)
        if value in sso_service.DEFAULT_ROLES:
            self.default_role = value

    @rx.event
    async def check_connection(self):
        self.section = "sso"
        await self._act(
            Action.sso_manage,
            lambda a: sso_service.sso_connection_check(
                session=a.session, actor=a.user, org_id=a.org.id
            ),
            success=lambda message: message,
            refresh=False,
        )

    @rx.event
    async def start_test(self):
        """Leave for the IdP (the route re-checks the owner and starts the flow)."""
        self.section = "sso"
        allowed = await self._act(
            Action.sso_manage, lambda a: a.org.slug, refresh=False, success=""
        )
        if not allowed:
            return
        return navigate(backend_url(routes.sso_test(str(allowed))))

    @rx.event
    async def set_sso_enabled(self, on: Any):
        self.section = "sso"
        enabled = on is True
        await self._act(
            Action.sso_manage,
            lambda a: sso_service.sso_enable_set(
                session=a.session, actor=a.user, org_id=a.org.id, enabled=enabled
            ),
            success=(
                "Single sign-on is on: addresses on your verified domains now sign in through "
                "your identity provider."
                if enabled
                else "Single sign-on is off. Everyone signs in with email and password."
            ),
        )

    @rx.event
    async def set_require_sso(self, on: Any):
        self.section = "sso"
        required = on is True
        await self._act(
            Action.sso_manage,
            lambda a: sso_service.require_sso_set(
                session=a.session, actor=a.user, org_id=a.org.id, required=required
            ),
            success=(
                "Single sign-on is required: password sign-in is off for addresses on your "
                "verified domains (owners with 2FA keep it as a way back in)."
                if required
                else "Single sign-on is no longer required; passwords work again."
            ),
        )

    @rx.event
    async def set_require_2fa(self, on: Any):
        self.section = "2fa"
        required = on is True
        await self._act(
            Action.sso_manage,
            lambda a: sso_service.require_2fa_set(
                session=a.session, actor=a.user, org_id=a.org.id, required=required
            ),
            success=(
                "Two-factor authentication is required: members without it are sent to turn it "
                "on before they can act here."
                if required
                else "Two-factor authentication is no longer required."
            ),
        )

    @rx.event
    async def add_domain(self, form: dict):
        form = form_fields(form)
        self.section = "domains"
        await self._act(
            Action.sso_manage,
            lambda a: (
                domain_service.domain_add(
                    session=a.session,
                    actor=a.user,
                    org_id=a.org.id,
                    domain=bounded(form.get("domain", ""), MAX_DOMAIN_INPUT),
                ).domain
            ),
            success=lambda domain: (
                f"{domain} added. Publish the TXT record shown below at your DNS provider, "
                "then select “Verify now”."
            ),
        )

    @rx.event
    async def verify_domain(self, domain_id: Any):
        self.section = "domains"
        result = await self._act(
            Action.sso_manage,
            lambda a: domain_service.domain_verify(
                session=a.session, actor=a.user, org_id=a.org.id, domain_id=browser_id(domain_id)
            ),
            success=lambda check: check.message,
        )
        if isinstance(result, domain_service.DomainCheck) and not result.found:
            self.notice = ""
            self.error_code = Code.domain_verification_failed.value
            self.error = result.message

    @rx.event
    async def remove_domain(self, domain_id: Any):
        self.section = "domains"
        await self._act(
            Action.sso_manage,
            lambda a: domain_service.domain_remove(
                session=a.session, actor=a.user, org_id=a.org.id, domain_id=browser_id(domain_id)
            ),
            success=lambda domain: f"{domain} was removed.",
        )

    # --- display ---------------------------------------------------------------------------

    @rx.var
    def turn_on_reason(self) -> str:
        """Why "Turn on" cannot work yet (shown next to it, never a silent disabled button)."""
        if self.sso_enabled:
            return ""
        if not self.secret_saved:
            return "Save the issuer URL, client ID and client secret first."
        if not self._tested:
            return "Run “Test sign-in” successfully first."
        return ""

    @rx.var
    def without_2fa_line(self) -> str:
        count = len(self._members_without_2fa)
        if count == 0:
            return "Every member has two-factor authentication on."
        shown = ", ".join(self._members_without_2fa[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        return f"{count} member{'s' if count != 1 else ''} without it: {shown}{more}."

    @rx.var
    def settings_href(self) -> str:
        return routes.org_settings(self.org_address) if self.org_address else ""
