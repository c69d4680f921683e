"""The one catalogue of error codes: name, HTTP status, a default message, its help article.

Every `DomainError` carries one of these codes. The UI shows the error's own message (written
for the case at hand) and falls back to the default here; the public API puts the code, the
status and the article's URL into its error body; the help center links each code to the
runbook that explains it. A code that is not in this catalogue cannot be raised
(`error_with_code` refuses it), and `tests/unit/test_error_codes.py` checks that every code
the services raise is catalogued.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    # generic
    error = "error"
    not_found = "not_found"
    permission_denied = "permission_denied"
    operator_only = "operator_only"
    project_required = "project_required"
    validation_failed = "validation_failed"
    conflict = "conflict"
    form_already_used = "form_already_used"
    # identity
    invalid_credentials = "invalid_credentials"
    account_locked = "account_locked"
    email_taken = "email_taken"
    invalid_email = "invalid_email"
    weak_password = "weak_password"
    password_unchanged = "password_unchanged"
    user_not_found = "user_not_found"
    sign_in_expired = "sign_in_expired"
    link_invalid = "link_invalid"
    link_expired = "link_expired"
    link_used = "link_used"
    totp_required = "totp_required"
    totp_invalid = "totp_invalid"
    totp_already_enabled = "totp_already_enabled"
    totp_not_enabled = "totp_not_enabled"
    totp_not_started = "totp_not_started"
    oauth_state_invalid = "oauth_state_invalid"
    google_disabled = "google_disabled"
    google_unavailable = "google_unavailable"
    google_token_failed = "google_token_failed"
    google_id_token_invalid = "google_id_token_invalid"
    google_email_missing = "google_email_missing"
    google_email_unverified = "google_email_unverified"
    google_account_mismatch = "google_account_mismatch"
    google_sign_in_conflict = "google_sign_in_conflict"
    google_denied = "google_denied"
    google_failed = "google_failed"
    sign_in_other_browser = "sign_in_other_browser"
    cookies_required = "cookies_required"
    secret_key_rotated = "secret_key_rotated"
    # organization security: single sign-on, verified domains, required 2FA
    sso_not_configured = "sso_not_configured"
    sso_settings_invalid = "sso_settings_invalid"
    sso_issuer_unreachable = "sso_issuer_unreachable"
    sso_issuer_mismatch = "sso_issuer_mismatch"
    sso_issuer_not_public = "sso_issuer_not_public"
    sso_redirect_mismatch = "sso_redirect_mismatch"
    sso_client_rejected = "sso_client_rejected"
    sso_token_failed = "sso_token_failed"
    sso_id_token_invalid = "sso_id_token_invalid"
    sso_id_token_expired = "sso_id_token_expired"
    sso_email_missing = "sso_email_missing"
    sso_email_unverified = "sso_email_unverified"
    sso_domain_not_verified = "sso_domain_not_verified"
    sso_not_tested = "sso_not_tested"
    sso_required = "sso_required"
    sso_denied = "sso_denied"
    sso_failed = "sso_failed"
    sso_account_conflict = "sso_account_conflict"
    two_factor_required = "two_factor_required"
    domain_invalid = "domain_invalid"
    domain_taken = "domain_taken"
    domain_verification_failed = "domain_verification_failed"
    domain_dns_unavailable = "domain_dns_unavailable"
    # organizations, team, invitations
    org_not_found = "org_not_found"
    not_a_member = "not_a_member"
    member_not_found = "member_not_found"
    project_not_found = "project_not_found"
    project_name_taken = "project_name_taken"
    slug_taken = "slug_taken"
    slug_reserved = "slug_reserved"
    slug_invalid = "slug_invalid"
    last_owner = "last_owner"
    use_leave = "use_leave"
    ownership_self = "ownership_self"
    role_forbidden = "role_forbidden"
    role_not_invitable = "role_not_invitable"
    confirmation_mismatch = "confirmation_mismatch"
    already_member = "already_member"
    invite_not_found = "invite_not_found"
    invite_pending = "invite_pending"
    invite_revoked = "invite_revoked"
    invite_accepted = "invite_accepted"
    invite_expired = "invite_expired"
    invite_superseded = "invite_superseded"
    invite_email_mismatch = "invite_email_mismatch"
    plan_limit_reached = "plan_limit_reached"
    # credits and billing
    insufficient_credits = "insufficient_credits"
    idempotency_key_reused = "idempotency_key_reused"
    hold_already_closed = "hold_already_closed"
    settle_exceeds_hold = "settle_exceeds_hold"
    billing_required = "billing_required"
    spend_cap_reached = "spend_cap_reached"
    subscription_inactive = "subscription_inactive"
    checkout_invalid = "checkout_invalid"
    local_payments_off = "local_payments_off"
    payment_provider_error = "payment_provider_error"
    portal_unavailable = "portal_unavailable"
    webhook_not_an_event = "webhook_not_an_event"
    # analytics
    analytics_period_invalid = "analytics_period_invalid"
    analytics_export_too_large = "analytics_export_too_large"
    # models and runs
    email_not_verified = "email_not_verified"
    model_not_found = "model_not_found"
    model_locked = "model_locked"
    model_disabled = "model_disabled"
    model_not_configured = "model_not_configured"
    model_not_available = "model_not_available"
    no_model = "no_model"
    not_retryable = "not_retryable"
    already_retried = "already_retried"
    daily_cap_reached = "daily_cap_reached"
    timed_out = "timed_out"
    provider_error = "provider_error"
    concurrent_run_limit = "concurrent_run_limit"
    worker_lost = "worker_lost"
    stopped_by_operator = "stopped_by_operator"
    run_not_queued = "run_not_queued"
    # marketing assistant
    conversation_not_found = "conversation_not_found"
    reply_in_progress = "reply_in_progress"
    reply_not_interrupted = "reply_not_interrupted"
    # competitor intel
    intel_sources_unavailable = "intel_sources_unavailable"
    intel_report_invalid = "intel_report_invalid"
    # operator console
    already_refunded = "already_refunded"
    nothing_to_refund = "nothing_to_refund"
    approval_required = "approval_required"
    self_approval = "self_approval"
    approval_decided = "approval_decided"
    view_as_read_only = "view_as_read_only"
    reason_required = "reason_required"
    bulk_needs_single_retry = "bulk_needs_single_retry"
    bulk_needs_single_action = "bulk_needs_single_action"
    refund_amount_invalid = "refund_amount_invalid"
    # assets and connections
    storage_not_configured = "storage_not_configured"
    asset_link_invalid = "asset_link_invalid"
    asset_link_expired = "asset_link_expired"
    connection_unavailable = "connection_unavailable"
    connection_token_failed = "connection_token_failed"
    connection_provider_unknown = "connection_provider_unknown"
    connection_not_configured = "connection_not_configured"
    # public API
    invalid_api_key = "invalid_api_key"
    key_expired = "key_expired"
    scope_missing = "scope_missing"
    api_disabled = "api_disabled"
    rate_limited = "rate_limited"
    invalid_request = "invalid_request"


@dataclass(frozen=True)
class ErrorCodeInfo:
    code: Code
    http_status: int
    message: str  # what happened and what to do, when the raiser has nothing more specific
    help_slug: str  # the help-center runbook or article that explains it


def _info(code: Code, http_status: int, message: str, help_slug: str) -> ErrorCodeInfo:
    return ErrorCodeInfo(code, http_status, message, help_slug)


_SIGN_IN = "cannot-sign-in"
_TEAM = "team-and-invitations"
_BILLING = "billing-and-credits"
_MODELS = "model-not-available"
_API = "api-integration"
_CONNECTIONS = "connections"
_GOOGLE = "google-sign-in"
_RUNS = "run-reliability"
_SSO = "security-and-sso"

CATALOGUE: dict[Code, ErrorCodeInfo] = {
    info.code: info
    for info in (
        _info(Code.error, 400, "Something could not be done. Try again.", "faq"),
        _info(Code.not_found, 404, "That item was not found. Reload the page.", "faq"),
        _info(
            Code.permission_denied,
            403,
            "Your role does not allow this. Ask an owner or admin.",
            "roles-and-permissions",
        ),
        _info(
            Code.operator_only, 403, "Only platform operators can do this.", "roles-and-permissions"
        ),
        _info(Code.project_required, 403, "Choose a project first.", "roles-and-permissions"),
        _info(Code.validation_failed, 422, "Some input is not valid. Check the form.", "faq"),
        _info(Code.conflict, 409, "This changed meanwhile. Reload and try again.", "faq"),
        _info(Code.form_already_used, 409, "This form was already sent. Reload the page.", "faq"),
        _info(Code.invalid_credentials, 401, "Email or password is not right.", _SIGN_IN),
        _info(Code.account_locked, 429, "Too many failed sign-ins. Wait and retry.", _SIGN_IN),
        _info(Code.email_taken, 409, "That email already has an account. Sign in.", _SIGN_IN),
        _info(Code.invalid_email, 422, "That does not look like an email address.", _SIGN_IN),
        _info(Code.weak_password, 422, "Choose a longer, less common password.", "security"),
        _info(Code.password_unchanged, 422, "Choose a password you have not used.", "security"),
        _info(Code.user_not_found, 404, "No such account.", _SIGN_IN),
        _info(Code.sign_in_expired, 401, "The sign-in took too long. Start again.", _SIGN_IN),
        _info(Code.link_invalid, 400, "This link is not valid. Ask for a new one.", _SIGN_IN),
        _info(Code.link_expired, 410, "This link has expired. Ask for a new one.", _SIGN_IN),
        _info(Code.link_used, 410, "This link was already used. Ask for a new one.", _SIGN_IN),
        _info(Code.totp_required, 401, "Enter the code from your authenticator app.", "security"),
        _info(Code.totp_invalid, 401, "That code is not right. Try the current one.", "security"),
        _info(Code.totp_already_enabled, 409, "Two-factor is already on.", "security"),
        _info(Code.totp_not_enabled, 409, "Two-factor is not on.", "security"),
        _info(Code.totp_not_started, 409, "Start the two-factor setup again.", "security"),
        _info(Code.oauth_state_invalid, 400, "The sign-in expired. Start it again.", _GOOGLE),
        _info(Code.google_disabled, 404, "Google sign-in is not set up here.", _GOOGLE),
        _info(Code.google_unavailable, 502, "Google did not answer. Try again.", _GOOGLE),
        _info(Code.google_token_failed, 502, "Google refused the sign-in. Retry.", _GOOGLE),
        _info(Code.google_id_token_invalid, 401, "Google's answer was not valid.", _GOOGLE),
        _info(Code.google_email_missing, 400, "Google did not share an email.", _GOOGLE),
        _info(Code.google_email_unverified, 403, "Verify the email at Google first.", _GOOGLE),
        _info(Code.google_account_mismatch, 409, "A different Google account is linked.", _GOOGLE),
        _info(Code.google_sign_in_conflict, 409, "Sign in with your password first.", _GOOGLE),
        _info(Code.google_denied, 403, "Google sign-in was cancelled.", _GOOGLE),
        _info(Code.google_failed, 502, "Google sign-in failed. Try again.", _GOOGLE),
        _info(
            Code.sign_in_other_browser,
            403,
            "This sign-in was started in another browser. Sign in again here.",
            _SIGN_IN,
        ),
        _info(
            Code.cookies_required,
            400,
            "Sign-in needs cookies. Allow cookies for this site and reload.",
            _SIGN_IN,
        ),
        _info(
            Code.secret_key_rotated,
            503,
            "A stored secret cannot be read since the server key changed. Contact support.",
            _SIGN_IN,
        ),
        _info(Code.sso_not_configured, 404, "Single sign-on is not set up here.", _SSO),
        _info(Code.sso_settings_invalid, 422, "Check the single sign-on settings.", _SSO),
        _info(Code.sso_issuer_unreachable, 502, "The identity provider did not answer.", _SSO),
        _info(
            Code.sso_issuer_not_public,
            422,
            "The identity provider's address is not a public one.",
            _SSO,
        ),
        _info(Code.sso_issuer_mismatch, 502, "The issuer URL names another issuer.", _SSO),
        _info(Code.sso_redirect_mismatch, 400, "Register the exact redirect URI.", _SSO),
        _info(Code.sso_client_rejected, 401, "The IdP refused the client ID or secret.", _SSO),
        _info(Code.sso_token_failed, 502, "The identity provider refused the sign-in.", _SSO),
        _info(Code.sso_id_token_invalid, 401, "The IdP's answer was not valid.", _SSO),
        _info(Code.sso_id_token_expired, 401, "The sign-in token expired: check clocks.", _SSO),
        _info(Code.sso_email_missing, 400, "The identity provider shared no email.", _SSO),
        _info(Code.sso_email_unverified, 403, "The IdP has not verified this email.", _SSO),
        _info(Code.sso_domain_not_verified, 403, "Verify the email's domain first.", _SSO),
        _info(Code.sso_not_tested, 409, "Test single sign-on before turning it on.", _SSO),
        _info(Code.sso_required, 403, "Sign in with your organization's SSO.", _SSO),
        _info(Code.sso_denied, 403, "The identity provider refused the sign-in.", _SSO),
        _info(Code.sso_failed, 502, "Single sign-on failed. Try again.", _SSO),
        _info(Code.sso_account_conflict, 409, "This account is linked elsewhere.", _SSO),
        _info(Code.two_factor_required, 403, "Turn on two-factor authentication first.", _SSO),
        _info(Code.domain_invalid, 422, "That is not a domain name.", _SSO),
        _info(Code.domain_taken, 409, "Another organization verified this domain.", _SSO),
        _info(Code.domain_verification_failed, 422, "The DNS TXT record was not found.", _SSO),
        _info(Code.domain_dns_unavailable, 502, "DNS did not answer. Try again.", _SSO),
        _info(Code.org_not_found, 404, "There is no organization at this address.", _TEAM),
        _info(Code.not_a_member, 403, "You are not a member of this organization.", _TEAM),
        _info(Code.member_not_found, 404, "That member is not in the organization.", _TEAM),
        _info(Code.project_not_found, 404, "That project was not found.", _TEAM),
        _info(Code.project_name_taken, 409, "A project already has that name.", _TEAM),
        _info(Code.slug_taken, 409, "That address is taken. Choose another.", _TEAM),
        _info(Code.slug_reserved, 422, "That address is reserved. Choose another.", _TEAM),
        _info(Code.slug_invalid, 422, "Use lower-case letters, digits and dashes.", _TEAM),
        _info(Code.last_owner, 409, "An organization needs an owner.", _TEAM),
        _info(Code.use_leave, 409, "Use Leave organization to remove yourself.", _TEAM),
        _info(Code.ownership_self, 409, "You already own this organization.", _TEAM),
        _info(
            Code.role_forbidden, 403, "Your role cannot give that role.", "roles-and-permissions"
        ),
        _info(Code.role_not_invitable, 422, "That role cannot be invited.", _TEAM),
        _info(Code.confirmation_mismatch, 422, "The confirmation did not match.", _TEAM),
        _info(Code.already_member, 409, "That person is already a member.", _TEAM),
        _info(Code.invite_not_found, 404, "That invitation was not found.", _TEAM),
        _info(Code.invite_pending, 409, "An invitation is already pending.", _TEAM),
        _info(Code.invite_revoked, 410, "That invitation was withdrawn.", _TEAM),
        _info(Code.invite_accepted, 409, "That invitation was already used.", _TEAM),
        _info(Code.invite_expired, 410, "That invitation expired. Ask for a new one.", _TEAM),
        _info(Code.invite_superseded, 410, "A newer invitation replaced this one.", _TEAM),
        _info(Code.invite_email_mismatch, 403, "Sign in with the invited address.", _TEAM),
        _info(
            Code.plan_limit_reached, 402, "A plan limit is reached. Upgrade in Billing.", _BILLING
        ),
        _info(Code.insufficient_credits, 402, "Not enough credits. Top up in Billing.", _BILLING),
        _info(Code.idempotency_key_reused, 409, "This request was already made.", _BILLING),
        _info(Code.hold_already_closed, 409, "These credits were already settled.", _BILLING),
        _info(Code.settle_exceeds_hold, 409, "The charge exceeds what was held.", _BILLING),
        _info(Code.billing_required, 402, "Add a billing profile in Billing.", "billing-required"),
        _info(Code.spend_cap_reached, 402, "The monthly spend cap is reached.", _BILLING),
        _info(Code.subscription_inactive, 402, "The subscription is not active.", _BILLING),
        _info(Code.checkout_invalid, 400, "This checkout is not valid any more.", _BILLING),
        _info(Code.local_payments_off, 404, "Local payment mode is off here.", _BILLING),
        _info(Code.payment_provider_error, 502, "The payment provider failed. Retry.", _BILLING),
        _info(Code.portal_unavailable, 502, "The billing portal is unavailable.", _BILLING),
        _info(
            Code.analytics_period_invalid,
            422,
            "Pick a period of whole UTC days, From on or before To, at most a year.",
            _BILLING,
        ),
        _info(
            Code.analytics_export_too_large,
            422,
            "Too many usage rows for one export. Pick a shorter period or a narrower scope.",
            _BILLING,
        ),
        _info(
            Code.webhook_not_an_event,
            400,
            "The webhook body is not a payment event; nothing was applied.",
            _BILLING,
        ),
        _info(Code.email_not_verified, 403, "Verify your email to use models.", _SIGN_IN),
        _info(Code.model_not_found, 404, "That model does not exist.", _MODELS),
        _info(Code.model_locked, 402, "This model needs a higher plan.", _MODELS),
        _info(Code.model_disabled, 503, "This model is turned off for now.", _MODELS),
        _info(Code.model_not_configured, 503, "This model is not available yet.", _MODELS),
        _info(Code.model_not_available, 404, "This model is not available to you.", _MODELS),
        _info(Code.no_model, 503, "No model is available right now.", _MODELS),
        _info(Code.not_retryable, 409, "Only a failed run can be retried.", _RUNS),
        _info(Code.already_retried, 409, "This run was already retried.", _RUNS),
        _info(
            Code.daily_cap_reached,
            429,
            "The daily cap is reached. It resets at 00:00 UTC.",
            _BILLING,
        ),
        _info(Code.conversation_not_found, 404, "There is no such conversation here.", _RUNS),
        _info(Code.reply_in_progress, 409, "Wait for the reply, or press Stop.", _RUNS),
        _info(Code.reply_not_interrupted, 409, "This reply is not interrupted.", _RUNS),
        _info(Code.timed_out, 504, "The run took too long; its credits were returned.", _RUNS),
        _info(Code.provider_error, 502, "The model provider failed; credits were returned.", _RUNS),
        _info(
            Code.concurrent_run_limit,
            429,
            "Too many runs are in progress at once. Start this one when one of them finishes.",
            _RUNS,
        ),
        _info(
            Code.worker_lost,
            503,
            "The worker running this stopped; its credits were returned. Retry it.",
            _RUNS,
        ),
        _info(
            Code.stopped_by_operator,
            409,
            "Platform support stopped this run; its credits were returned.",
            _RUNS,
        ),
        _info(Code.run_not_queued, 409, "Only a queued run can be sent again.", _RUNS),
        _info(
            Code.intel_sources_unavailable,
            502,
            "None of the report's sources could be read; its credits were returned.",
            _RUNS,
        ),
        _info(
            Code.intel_report_invalid,
            502,
            "The report did not match its format or cited an unknown source; credits returned.",
            _RUNS,
        ),
        _info(Code.already_refunded, 409, "This run was already refunded.", _BILLING),
        _info(Code.nothing_to_refund, 409, "This run has nothing left to refund.", _BILLING),
        _info(Code.approval_required, 409, "A second operator must approve this.", _BILLING),
        _info(Code.self_approval, 403, "Another operator must approve this request.", _BILLING),
        _info(Code.approval_decided, 409, "This request was already decided.", _BILLING),
        _info(
            Code.view_as_read_only,
            403,
            "Viewing as the customer is read-only. Stop viewing as to act.",
            "roles-and-permissions",
        ),
        _info(Code.reason_required, 422, "Give a reason; it goes into the audit log.", "faq"),
        _info(
            Code.bulk_needs_single_retry,
            409,
            "Retry one failed run first; rerun the rest once it succeeded.",
            _RUNS,
        ),
        _info(
            Code.bulk_needs_single_action,
            409,
            "Requeue or stop one run of this customer first; then act on the rest.",
            _RUNS,
        ),
        _info(
            Code.refund_amount_invalid,
            422,
            "Refund more than nothing and at most what the run was charged.",
            _BILLING,
        ),
        _info(Code.storage_not_configured, 503, "Asset storage is not set up.", _RUNS),
        _info(Code.asset_link_invalid, 403, "This asset link is not valid.", _RUNS),
        _info(Code.asset_link_expired, 403, "This asset link expired. Reload the page.", _RUNS),
        _info(Code.connection_unavailable, 502, "The platform did not answer.", _CONNECTIONS),
        _info(Code.connection_token_failed, 502, "The platform refused the token.", _CONNECTIONS),
        _info(Code.connection_provider_unknown, 404, "Unknown platform.", _CONNECTIONS),
        _info(
            Code.connection_not_configured, 503, "This platform is not available yet.", _CONNECTIONS
        ),
        _info(Code.invalid_api_key, 401, "The API key is not valid.", _API),
        _info(Code.key_expired, 401, "The API key has expired.", _API),
        _info(Code.scope_missing, 403, "The API key lacks the scope for this.", _API),
        _info(Code.api_disabled, 403, "The API is turned off for this organization.", _API),
        _info(Code.rate_limited, 429, "Too many requests. Wait and retry.", _API),
        _info(Code.invalid_request, 400, "The request is not valid.", _API),
    )
}


def error_code_info(code: str) -> ErrorCodeInfo:
    """The catalogue entry of `code`. Raises KeyError for a code that is not catalogued."""
    return CATALOGUE[Code(code)]
