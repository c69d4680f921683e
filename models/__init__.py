"""SQLModel tables and enums. Importing this package registers every table's metadata."""

from models.analytics import AnalyticsRollup, AnalyticsRollupWatermark, ReconciliationDay
from models.api import ApiIdempotencyKey, ApiSettings
from models.assistant import AssistantConversation
from models.billing import (
    CreditAccount,
    CreditLedgerEntry,
    CreditPool,
    Invoice,
    Plan,
    ProcessedWebhookEvent,
    Subscription,
)
from models.brand import BrandKit, DailyCapUse
from models.forms import FormSubmission, OrgOldAddress
from models.help import (
    HelpArticle,
    HelpSearchMiss,
    Incident,
    IncidentUpdate,
    LowBalanceAlert,
    NotificationPreference,
    SupportTicketMessage,
)
from models.identity import (
    EmailToken,
    OAuthFlowState,
    RecoveryCode,
    SignInThrottle,
    User,
    UserSession,
)
from models.intel import CompetitorSource
from models.operator import AdjustmentApproval, ViewAsGrant
from models.ops import (
    ApiKey,
    AuditLogEntry,
    JobRun,
    OAuthConnection,
    OutboxMail,
    RequestLog,
    SupportTicket,
)
from models.orgs import Invite, Membership, Organization, Project, ProjectAccess
from models.sso import OrgDomain, OrgSecurity, SsoIdentity
from models.studio import (
    AIModel,
    Asset,
    AssistantMessage,
    CompetitorReport,
    DailyUsageCounter,
    Generation,
    Tool,
    UsageEvent,
)

__all__ = [
    "AIModel",
    "AnalyticsRollup",
    "AnalyticsRollupWatermark",
    "ReconciliationDay",
    "ApiIdempotencyKey",
    "ApiKey",
    "ApiSettings",
    "Asset",
    "AssistantMessage",
    "AssistantConversation",
    "AdjustmentApproval",
    "AuditLogEntry",
    "BrandKit",
    "CompetitorReport",
    "CompetitorSource",
    "CreditAccount",
    "CreditLedgerEntry",
    "CreditPool",
    "DailyCapUse",
    "DailyUsageCounter",
    "EmailToken",
    "FormSubmission",
    "Generation",
    "HelpArticle",
    "HelpSearchMiss",
    "Incident",
    "IncidentUpdate",
    "Invite",
    "Invoice",
    "JobRun",
    "LowBalanceAlert",
    "Membership",
    "NotificationPreference",
    "OAuthConnection",
    "OAuthFlowState",
    "OrgDomain",
    "OrgOldAddress",
    "OrgSecurity",
    "Organization",
    "OutboxMail",
    "Plan",
    "ProcessedWebhookEvent",
    "Project",
    "ProjectAccess",
    "RecoveryCode",
    "RequestLog",
    "SignInThrottle",
    "SsoIdentity",
    "Subscription",
    "SupportTicket",
    "SupportTicketMessage",
    "Tool",
    "UsageEvent",
    "User",
    "UserSession",
    "ViewAsGrant",
]
