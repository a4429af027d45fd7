"""Daraja (Safaricom M-Pesa) client package: the one door between PesaDesk and Safaricom."""

from app.daraja.client import (
    DarajaClient,
    password_and_timestamp,
    stk_password,
    stk_timestamp,
)
from app.daraja.codes import RESULT_CODES, ResultCodeInfo, describe, is_success
from app.daraja.errors import (
    DarajaAuthError,
    DarajaBadRequest,
    DarajaConnectionError,
    DarajaError,
    DarajaInvalidToken,
    DarajaMerchantNotFound,
    DarajaSubscriberLocked,
    DarajaSystemBusy,
    DarajaThrottled,
    DarajaTimeout,
    DarajaUnexpectedResponse,
    DarajaWrongCredentials,
)
from app.daraja.schemas import (
    CallbackParseError,
    StkCallback,
    StkPushAccepted,
    StkPushRequest,
    StkQueryResult,
    parse_stk_callback,
)
from app.daraja.tokens import CachedToken, MemoryTokenStore, TokenStore

__all__ = [
    "RESULT_CODES",
    "CachedToken",
    "CallbackParseError",
    "DarajaAuthError",
    "DarajaBadRequest",
    "DarajaClient",
    "DarajaConnectionError",
    "DarajaError",
    "DarajaInvalidToken",
    "DarajaMerchantNotFound",
    "DarajaSubscriberLocked",
    "DarajaSystemBusy",
    "DarajaThrottled",
    "DarajaTimeout",
    "DarajaUnexpectedResponse",
    "DarajaWrongCredentials",
    "MemoryTokenStore",
    "ResultCodeInfo",
    "StkCallback",
    "StkPushAccepted",
    "StkPushRequest",
    "StkQueryResult",
    "TokenStore",
    "describe",
    "is_success",
    "parse_stk_callback",
    "password_and_timestamp",
    "stk_password",
    "stk_timestamp",
]
