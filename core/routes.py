"""Route constants and URL builders. Every link in the app is built here.

Lives below `services/` (no Reflex import) so services, jobs, the HTTP API and pages all
build links the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

INDEX = "/"
SIGN_IN = "/sign-in"
REGISTER = "/register"
FORGOT_PASSWORD = "/forgot-password"
RESET_PASSWORD = "/reset-password"
VERIFY_EMAIL = "/verify-email"
SIGN_IN_2FA = "/sign-in/two-factor"
DEV_OUTBOX = "/dev/outbox"
NEW_ORG = "/orgs/new"
ACCOUNT_SECURITY = "/account/security"
OPERATOR_JOBS = "/operator/jobs"
INVITE = "/invite"  # ?token=...
# Public help center and platform status (no sign-in needed).
HELP = "/help"
STATUS = "/status"
# The operator console (platform staff).
OPERATOR_HOME = "/operator"
OPERATOR_ANALYTICS = "/operator/analytics"  # platform usage and revenue

ORG_ROUTE_ARG = "org_slug"


@dataclass(frozen=True)
class Area:
    key: str
    label: str
    icon: str
    description: str


# The sidebar, in order. Each area lives at /org/<slug>/<key>.
AREAS: tuple[Area, ...] = (
    Area(
        "studio",
        "Creative Studio",
        "sparkles",
        "Generate copy, images and video with your team's models.",
    ),
    Area(
        "assistant",
        "Assistant",
        "message-circle",
        "Chat with the Marketing Assistant about campaigns and copy.",
    ),
    Area(
        "intel",
        "Competitor Intel",
        "radar",
        "Analysis reports on competitors' positioning and messaging.",
    ),
    Area(
        "analytics",
        "Analytics",
        "chart-column",
        "Usage by period, project, member, model and modality.",
    ),
    Area("team", "Team", "users", "Members, roles, project access and invitations."),
    Area("billing", "Billing", "credit-card", "Plan, credits, invoices and spend controls."),
    Area("settings", "Settings", "settings", "Security, connections and API access."),
    Area("help", "Help", "life-buoy", "Articles, runbooks, platform status and support."),
)
AREA_KEYS = tuple(area.key for area in AREAS)


def org_area(slug: str, area: str) -> str:
    if area not in AREA_KEYS:
        raise ValueError(f"unknown area {area!r}")
    return f"/org/{slug}/{area}"


def org_home(slug: str) -> str:
    return org_area(slug, "studio")


def org_billing(slug: str) -> str:
    return org_area(slug, "billing")


def org_studio_with_prompt(slug: str, prompt: str, tool: str | None = None) -> str:
    """Creative Studio with its prompt filled in (and a tool picked), e.g. from Competitor Intel."""
    query = {"prompt": prompt}
    if tool:
        query["tool"] = tool
    return f"{org_home(slug)}?{urlencode(query)}"


def org_assistant(slug: str, conversation: str = "") -> str:
    """The Marketing Assistant, with a conversation open when one is named."""
    base = org_area(slug, "assistant")
    return f"{base}?{urlencode({'c': conversation})}" if conversation else base


def org_team(slug: str) -> str:
    return org_area(slug, "team")


def org_settings(slug: str) -> str:
    return org_area(slug, "settings")


def org_subpage(slug: str, area: str, sub: str) -> str:
    """A page below an area: /org/<slug>/<area>/<sub> (e.g. settings/api, settings/sso)."""
    return f"{org_area(slug, area)}/{sub}"


def org_subpage_route(area: str, sub: str) -> str:
    """The Reflex route pattern of a page below an area: /org/[org_slug]/<area>/<sub>."""
    return f"{org_page_route(area)}/{sub}"


def help_article(slug: str) -> str:
    """A help-center article or runbook; error codes link here through their help slug."""
    return f"{HELP}/{quote(slug, safe='')}"


def help_search(query: str) -> str:
    return f"{HELP}?{urlencode({'q': query})}" if query else HELP


def org_page_route(area: str) -> str:
    """The Reflex route pattern of an org area page: /org/[org_slug]/<area>."""
    if area not in AREA_KEYS:
        raise ValueError(f"unknown area {area!r}")
    return f"/org/[{ORG_ROUTE_ARG}]/{area}"


def org_local_checkout(slug: str) -> str:
    """Local payment mode's checkout page of an organization (its token comes as ?session=)."""
    return f"{org_billing(slug)}/local-checkout"


def org_local_checkout_route() -> str:
    """The Reflex route pattern of local payment mode's checkout page (under Billing)."""
    return f"{org_page_route('billing')}/local-checkout"


def org_local_receipt(slug: str, invoice_id: str) -> str:
    """Local payment mode's receipt of one invoice (Stripe invoices have a hosted page)."""
    return f"{org_billing(slug)}/receipt?{urlencode({'invoice': invoice_id})}"


def org_local_receipt_route() -> str:
    return f"{org_page_route('billing')}/receipt"


def org_billing_after_checkout(slug: str, outcome: str) -> str:
    """Billing, telling it how a checkout ended ("success" or "canceled")."""
    return f"{org_billing(slug)}?{urlencode({'checkout': outcome})}"


def absolute(base_url: str, path: str) -> str:
    """`path` on a deployment's public base URL (mail links, OAuth redirect URIs)."""
    return f"{base_url.rstrip('/')}{path}"


def invite_accept(base_url: str, token: str) -> str:
    """The link in an invitation mail; the token travels in the query string."""
    return absolute(base_url, f"{INVITE}?{urlencode({'token': token})}")


def org_slug_from_path(path: str) -> str:
    """The <slug> of /org/<slug>/..., lower-cased; "" for any other path."""
    parts = [part for part in (path or "").split("/") if part]
    return parts[1].lower() if len(parts) >= 2 and parts[0] == "org" else ""


def sign_in(next_path: str | None = None) -> str:
    if next_path and is_safe_next(next_path) and next_path != SIGN_IN:
        return f"{SIGN_IN}?next={quote(next_path, safe='/')}"
    return SIGN_IN


def register(email: str | None = None, next_path: str | None = None) -> str:
    """/register, optionally with the invited address pre-filled and where to go after sign-in."""
    query = {}
    if email:
        query["email"] = email
    if next_path and is_safe_next(next_path):
        query["next"] = next_path
    return f"{REGISTER}?{urlencode(query)}" if query else REGISTER


def is_safe_next(path: str | None) -> bool:
    """Only same-site relative paths may be redirect targets (no open redirects)."""
    return bool(path) and path.startswith("/") and not path.startswith("//") and "\\" not in path


# Plain HTTP routes on the backend (creative_studio/api).
API_AUTH_SESSION = "/auth/session"
API_AUTH_SIGN_OUT = "/auth/sign-out"
# Sets this browser's pre-auth cookie, then returns to the sign-in page (login CSRF binding).
API_SIGN_IN_START = "/auth/sign-in"
API_HEALTH = "/healthz"
API_STRIPE_WEBHOOK = "/webhooks/stripe"
API_GOOGLE_START = "/auth/google/start"
API_GOOGLE_CALLBACK = "/auth/google/callback"
# An organization's own identity provider (single sign-on): start (?org=<slug>&next=), the one
# callback to register at the provider, and the owner's test sign-in (?org=<slug>).
API_SSO_START = "/auth/sso/start"
API_SSO_CALLBACK = "/auth/sso/callback"
API_SSO_TEST = "/auth/sso/test"
API_CONNECTIONS_START = "/connections/{provider}/start"
API_CONNECTIONS_CALLBACK = "/connections/{provider}/callback"
API_ASSET_PREFIX = "/signed-assets/"


def sso_start(org_slug: str, next_path: str | None = None) -> str:
    """The backend route that sends a browser to an organization's identity provider."""
    query = {"org": org_slug}
    if next_path and is_safe_next(next_path):
        query["next"] = next_path
    return f"{API_SSO_START}?{urlencode(query)}"


def sso_test(org_slug: str) -> str:
    """The backend route that starts an owner's test sign-in at the organization's IdP."""
    return f"{API_SSO_TEST}?{urlencode({'org': org_slug})}"


def org_sso_settings(slug: str) -> str:
    return org_subpage(slug, "settings", "sso")


def connections_start(provider_key: str) -> str:
    return API_CONNECTIONS_START.format(provider=quote(provider_key, safe=""))


def connections_callback(provider_key: str) -> str:
    return API_CONNECTIONS_CALLBACK.format(provider=quote(provider_key, safe=""))


SESSION_COOKIE = "cs_session"
# The random, HttpOnly cookie that binds a sign-in to the browser that started it. Over https
# it carries the __Host- prefix, so a sibling subdomain cannot plant one.
PREAUTH_COOKIE = "cs_preauth"
PREAUTH_COOKIE_HTTPS = "__Host-cs_preauth"
# Query flag the pre-auth route adds on its way back to the sign-in page (no second round trip).
SIGN_IN_BROWSER_CHECKED = "browser"


def sign_in_start(next_path: str | None = None, *, error: str = "", expired: bool = False) -> str:
    """The backend route that gives this browser its pre-auth cookie, then opens sign-in
    (with the same `next`, and the error or expiry the sign-in page was about to show)."""
    query = {}
    if next_path and is_safe_next(next_path) and next_path != SIGN_IN:
        query["next"] = next_path
    if error:
        query["error"] = error
    if expired:
        query["expired"] = "1"
    return f"{API_SIGN_IN_START}?{urlencode(query)}" if query else API_SIGN_IN_START


# --- help center, status and support (issue 15) ----------------------------------------------
HELP_ARTICLE_ARG = "article_slug"
HELP_ARTICLE_ROUTE = f"{HELP}/[{HELP_ARTICLE_ARG}]"
OPERATOR_SUPPORT = "/operator/support"
SUPPORT_FIELDS = (
    "project_id",
    "tool",
    "model",
    "time",
    "error_code",
    "request_id",
    "generation_id",
    "subject",
)


def org_help(slug: str) -> str:
    return org_area(slug, "help")


def support_new(slug: str, **fields: object) -> str:
    """The support form of an organization, pre-filled from where the person was:
    project_id, tool, model, time (UTC), error_code, request_id, generation_id, subject."""
    query = {k: str(v) for k, v in fields.items() if k in SUPPORT_FIELDS and v not in (None, "")}
    base = org_subpage(slug, "help", "support")
    return f"{base}?{urlencode(query)}" if query else base


def support_tickets(slug: str) -> str:
    return org_subpage(slug, "help", "tickets")


def help_notifications(slug: str) -> str:
    return org_subpage(slug, "help", "notifications")
