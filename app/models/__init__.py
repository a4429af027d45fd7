"""Database models: users, tills, payments with their events, and raw callbacks."""

from app.models.callback import CallbackOutcome, RawCallback
from app.models.payment import Payment, PaymentEvent, PaymentQuery
from app.models.till import Till
from app.models.token import DarajaToken
from app.models.user import Role, User

__all__ = [
    "CallbackOutcome",
    "DarajaToken",
    "Payment",
    "PaymentEvent",
    "PaymentQuery",
    "RawCallback",
    "Role",
    "Till",
    "User",
]
