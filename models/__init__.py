"""SQLModel tables and enums. Importing this package registers every table's metadata."""

from models.billing import (
    CreditAccount,
    CreditLedgerEntry,
    CreditPool,
    Invoice,
    Plan,
    ProcessedWebhookEvent,
    Subscription,
)
from models.identity import EmailToken, OAuthFlowState, RecoveryCode, User, UserSession
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
from models.studio import (
    AIModel,
    Asset,
    AssistantMessage,
    CompetitorReport,
    DailyUsageCounter,
    Generation,
    Tool,
    UsageDailyRollup,
    UsageEvent,
)

__all__ = [
    "AIModel",
    "ApiKey",
    "Asset",
    "AssistantMessage",
    "AuditLogEntry",
    "CompetitorReport",
    "CreditAccount",
    "CreditLedgerEntry",
    "CreditPool",
    "DailyUsageCounter",
    "EmailToken",
    "Generation",
    "Invite",
    "Invoice",
    "JobRun",
    "Membership",
    "OAuthConnection",
    "OAuthFlowState",
    "Organization",
    "OutboxMail",
    "Plan",
    "ProcessedWebhookEvent",
    "Project",
    "ProjectAccess",
    "RecoveryCode",
    "RequestLog",
    "Subscription",
    "SupportTicket",
    "Tool",
    "UsageDailyRollup",
    "UsageEvent",
    "User",
    "UserSession",
]
