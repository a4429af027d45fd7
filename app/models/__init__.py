"""Database models: users, tills, payments with their events, and raw callbacks."""

from app.models.audit import AuditAction, AuditEntry
from app.models.callback import CallbackOutcome, RawCallback
from app.models.close import DayClose
from app.models.payment import Payment, PaymentEvent, PaymentQuery
from app.models.statement import StatementEntry, StatementUpload
from app.models.till import Shop, Till, user_tills
from app.models.token import DarajaToken
from app.models.user import Role, User

__all__ = [
    "AuditAction",
    "AuditEntry",
    "CallbackOutcome",
    "DarajaToken",
    "DayClose",
    "Payment",
    "PaymentEvent",
    "PaymentQuery",
    "RawCallback",
    "Role",
    "Shop",
    "StatementEntry",
    "StatementUpload",
    "Till",
    "User",
    "user_tills",
]
