"""Exceptions raised by the Daraja client, one class per thing a caller can act on."""

from __future__ import annotations

#: Raw response text kept on an error; enough to diagnose, small enough to store in a row.
BODY_LIMIT = 2048


class DarajaError(Exception):
    """Base class: every failure talking to Daraja.

    ``may_have_been_processed`` is the one attribute a payment flow must read. It is True
    only when the request may have reached Daraja and been acted on but no usable answer
    came back (read timeout, connection dropped after sending, an unreadable 2xx/5xx).
    It is False when we never connected, or when Daraja (or its gateway) answered with an
    error envelope or a 4xx: a refused push sent no prompt and can be fixed and re-sent.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
        may_have_been_processed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        self.body = body[:BODY_LIMIT] if body is not None else None
        self.may_have_been_processed = may_have_been_processed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, http_status={self.http_status!r}, "
            f"error_code={self.error_code!r}, "
            f"may_have_been_processed={self.may_have_been_processed!r})"
        )


class DarajaAuthError(DarajaError):
    """OAuth refused: wrong consumer key/secret, wrong grant type or auth scheme."""


class DarajaInvalidToken(DarajaError):
    """Daraja still called the token invalid after one refresh and one retry."""


class DarajaBadRequest(DarajaError):
    """Daraja rejected the payload (400.002.02 "Bad Request - Invalid X", 400.002.05, ...).

    ``field`` names the offending field when the message says which ("Invalid Amount"
    → "Amount"), else None.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        http_status: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
        may_have_been_processed: bool = False,
    ) -> None:
        super().__init__(
            message,
            http_status=http_status,
            error_code=error_code,
            error_message=error_message,
            request_id=request_id,
            body=body,
            may_have_been_processed=may_have_been_processed,
        )
        self.field = field


class DarajaWrongCredentials(DarajaError):
    """500.001.1001 "Wrong credentials": passkey, shortcode or timestamp don't match Password."""


class DarajaMerchantNotFound(DarajaError):
    """500.001.1001 "Merchant does not exist": shortcode unknown for this app/environment."""


class DarajaSubscriberLocked(DarajaError):
    """500.001.1001 "Unable to lock subscriber": the customer already has a prompt open."""


class DarajaThrottled(DarajaError):
    """Spike arrest (500.003.02), quota violation (500.003.03) or HTTP 429: slow down."""


class DarajaSystemBusy(DarajaError):
    """Daraja-side trouble: "System is busy", 500.003.1001, or another 5xx answer."""


class DarajaTimeout(DarajaError):
    """Connect or read timeout; only a read timeout may have been processed."""


class DarajaConnectionError(DarajaError):
    """Connection refused, reset, dropped, DNS or TLS failure."""


class DarajaUnexpectedResponse(DarajaError):
    """An answer we cannot interpret: non-JSON, unknown envelope, or unknown errorCode."""
