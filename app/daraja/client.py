"""The only code that speaks HTTP to Safaricom Daraja: OAuth token, STK push and STK query."""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
import urllib3.exceptions

from app.daraja.errors import (
    BODY_LIMIT,
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
from app.daraja.schemas import StkPushAccepted, StkPushRequest, StkQueryResult
from app.daraja.tokens import CachedToken, MemoryTokenStore, TokenStore

logger = logging.getLogger("app.daraja")

#: M-Pesa timestamps are East Africa Time; a UTC server must still send EAT (no DST there).
NAIROBI = ZoneInfo("Africa/Nairobi")

OAUTH_PATH = "/oauth/v1/generate?grant_type=client_credentials"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"

# Token-error codes differ per Daraja product/gateway; 401.* covers 401.002.01, 401.003.01...
_INVALID_TOKEN_CODES = frozenset({"404.001.03", "400.003.01"})
_BAD_REQUEST_CODES = frozenset({"400.002.02", "400.002.05", "404.001.01", "404.001.04", "405.001"})
_BAD_FIELD = re.compile(r"Bad Request\s*-\s*Invalid\s+([A-Za-z][A-Za-z0-9_]*)\s*$", re.I)


# --------------------------------------------------------------------------- pure helpers


def stk_timestamp(instant: datetime) -> str:
    """``YYYYMMDDHHmmss`` of ``instant`` in Africa/Nairobi; naive datetimes are refused."""
    # A naive datetime would be read as server-local time: wrong on a UTC server.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("stk_timestamp needs a timezone-aware datetime")
    return instant.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Standard base64 of the text ``shortcode + passkey + timestamp``."""
    for name, value in (("shortcode", shortcode), ("passkey", passkey), ("timestamp", timestamp)):
        # bytes here would be formatted as "b'...'" and give "Wrong credentials".
        if not isinstance(value, str):
            raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def password_and_timestamp(shortcode: str, passkey: str, instant: datetime) -> tuple[str, str]:
    """(Password, Timestamp) from ONE instant, so the two can never disagree."""
    timestamp = stk_timestamp(instant)
    return stk_password(shortcode, passkey, timestamp), timestamp


# --------------------------------------------------------------------------- response helpers


def _json_body(resp: requests.Response) -> Any:
    """The decoded JSON body, or None when it is empty or not JSON."""
    if not resp.content:
        return None
    try:
        return json.loads(resp.content)
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str | None:
    """Envelope values as text; Daraja sends strings but a number must not crash us."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _envelope(doc: Any) -> tuple[str, str, str | None] | None:
    """(errorCode, errorMessage, requestId) when ``doc`` is a Daraja error envelope."""
    if not isinstance(doc, Mapping):
        return None
    code = _text(doc.get("errorCode"))
    if not code:
        return None
    return code, _text(doc.get("errorMessage")) or "", _text(doc.get("requestId"))


def _is_invalid_token(resp: requests.Response) -> bool:
    """Daraja said "Invalid Access Token", whatever HTTP status carried it."""
    env = _envelope(_json_body(resp))
    if env is None:
        # A bare 401 with no envelope is a token problem too (some gateways answer so).
        return resp.status_code == 401
    code = env[0]
    return code in _INVALID_TOKEN_CODES or code.startswith("401.")


def _is_pending(resp: requests.Response) -> bool:
    """STK query's "still on the customer's phone" answer (any HTTP status, usually 500)."""
    env = _envelope(_json_body(resp))
    return env is not None and env[0] == "500.001.1001" and "being processed" in env[1].lower()


def _response_code_is_zero(value: Any) -> bool:
    # "0" in the docs, 0 from some gateways; bool False must not pass as 0.
    return (
        not isinstance(value, bool) and isinstance(value, str | int) and str(value).strip() == "0"
    )


def _error_from_response(resp: requests.Response, what: str) -> DarajaError:
    """Map an answer that is not a success to the exception a caller can act on.

    Envelopes and 4xx are explicit refusals (may_have_been_processed False). A 2xx or 5xx
    we cannot read counts as "no usable answer" (True): for a push, a prompt may exist.
    """
    status = resp.status_code
    text = resp.text[:BODY_LIMIT] if resp.content else ""
    env = _envelope(_json_body(resp))
    if env is None:
        common: dict[str, Any] = {"http_status": status, "body": text}
        if status == 429:
            return DarajaThrottled(f"{what}: HTTP 429 Too Many Requests", **common)
        if status >= 500:
            return DarajaSystemBusy(
                f"{what}: HTTP {status} without a Daraja error body",
                may_have_been_processed=True,
                **common,
            )
        # A 2xx we cannot read may hide an accepted push; 3xx/4xx are refusals.
        return DarajaUnexpectedResponse(
            f"{what}: unexpected HTTP {status} answer",
            may_have_been_processed=200 <= status < 300,
            **common,
        )

    code, message, request_id = env
    kwargs: dict[str, Any] = {
        "http_status": status,
        "error_code": code,
        "error_message": message,
        "request_id": request_id,
        "body": text,
        "may_have_been_processed": False,
    }
    summary = f"{what}: {code} {message}".rstrip()
    lowered = message.lower()
    if code in _INVALID_TOKEN_CODES or code.startswith("401."):
        return DarajaInvalidToken(summary, **kwargs)
    if code in _BAD_REQUEST_CODES or code.startswith("400.002."):
        match = _BAD_FIELD.search(message)
        return DarajaBadRequest(summary, field=match.group(1) if match else None, **kwargs)
    if code == "500.001.1001":
        # One code, four situations: only the message tells them apart.
        if "wrong credentials" in lowered:
            return DarajaWrongCredentials(summary, **kwargs)
        if "merchant does not exist" in lowered:
            return DarajaMerchantNotFound(summary, **kwargs)
        if "unable to lock subscriber" in lowered:
            return DarajaSubscriberLocked(summary, **kwargs)
        return DarajaUnexpectedResponse(summary, **kwargs)
    if code == "500.003.03" or (code == "500.003.02" and "spike arrest" in lowered):
        return DarajaThrottled(summary, **kwargs)
    if code in ("500.003.02", "500.003.1001"):
        return DarajaSystemBusy(summary, **kwargs)
    if status == 429:
        return DarajaThrottled(summary, **kwargs)
    return DarajaUnexpectedResponse(summary, **kwargs)


# --------------------------------------------------------------------------- transport errors


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests puts urllib3 errors in args[0], MaxRetryError in
    ``.reason``, and Python links causes via __cause__/__context__."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nexts: list[Any] = [getattr(cur, "reason", None), cur.__cause__, cur.__context__]
        nexts.extend(cur.args)
        todo.extend(n for n in nexts if isinstance(n, BaseException))


def _transport_error(exc: requests.RequestException, what: str) -> DarajaError:
    """Map a requests exception, deciding whether the request may have been acted on.

    Rule: False only when we can tell the request never left — the TCP connection was
    never made (refused, DNS, connect timeout: urllib3 NewConnectionError /
    ConnectTimeoutError / NameResolutionError, which requests wraps in MaxRetryError), a
    proxy failure, a TLS certificate failure, or an invalid URL. Everything else (read
    timeout, ProtocolError / RemoteDisconnected / reset after sending, any unrecognised
    ConnectionError) is True: for a push that means "a prompt may exist, query before
    re-sending". Erring towards True costs a status query; erring towards False could
    charge a customer twice.
    """
    chain = list(_exception_chain(exc))

    def has(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    if isinstance(exc, requests.exceptions.ConnectTimeout) or (
        has(urllib3.exceptions.ConnectTimeoutError)
        and not has(urllib3.exceptions.NewConnectionError)
    ):
        return DarajaTimeout(f"{what}: connect timeout", may_have_been_processed=False)
    if isinstance(exc, requests.exceptions.Timeout) or has(urllib3.exceptions.ReadTimeoutError):
        return DarajaTimeout(
            f"{what}: no answer within the read timeout", may_have_been_processed=True
        )
    never_sent = (
        has(urllib3.exceptions.NewConnectionError)  # also NameResolutionError (subclass)
        or isinstance(exc, requests.exceptions.ProxyError)
        or has(ssl.SSLCertVerificationError, urllib3.exceptions.ProxyError)
        or isinstance(
            exc,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema,
        )
    )
    reason = "could not connect" if never_sent else "connection lost"
    return DarajaConnectionError(
        f"{what}: {reason} ({type(exc).__name__})", may_have_been_processed=not never_sent
    )


# --------------------------------------------------------------------------- the client


def _expires_in(value: Any) -> int:
    """``expires_in`` arrives as "3599" or 3599; anything else is unusable."""
    if isinstance(value, bool):
        raise ValueError("boolean expires_in")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    seconds = int(str(value).strip())
    if seconds <= 0:
        raise ValueError("non-positive expires_in")
    return seconds


class DarajaClient:
    """Blocking Daraja client for one set of app credentials.

    Thread-safe: one requests.Session, one shared token (see TokenStore). Never retries
    a POST after a timeout or a dropped connection (a re-sent push can charge twice); the
    only retry is after an invalid-token answer, which proves Daraja refused the call.
    """

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        token_store: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_margin: float = 60.0,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// or http://")
        self._base_url = base_url.rstrip("/")
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self._token_store: TokenStore = (
            token_store if token_store is not None else MemoryTokenStore()
        )
        self._clock = clock
        self._now = now
        self._refresh_margin = refresh_margin

    def __repr__(self) -> str:
        # Never include the key, secret or token.
        return f"DarajaClient({self._base_url!r})"

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> DarajaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- token

    def _is_fresh(self, token: CachedToken | None) -> bool:
        return token is not None and token.expires_at - self._refresh_margin > self._clock()

    def get_token(self, force: bool = False) -> str:
        """A valid access token, fetched at most once per expiry across concurrent callers.

        ``force`` fetches a new token even if the cached one looks fresh, unless another
        caller replaced it while we waited for the refresh lock.
        """
        seen = self._token_store.get()
        if not force and seen is not None and self._is_fresh(seen):
            return seen.access_token
        with self._token_store.refresh_lock():
            # Double-check: whoever held the lock before us has probably just refreshed.
            current = self._token_store.get()
            if current is not None and self._is_fresh(current):
                if not force or seen is None or current.access_token != seen.access_token:
                    return current.access_token
            token = self._fetch_token()
            self._token_store.put(token)
            return token.access_token

    def _fetch_token(self) -> CachedToken:
        # Expiry is counted from before the request, so a slow answer errs towards early refresh.
        started = self._clock()
        resp = self._send("GET", OAUTH_PATH, auth=(self._consumer_key, self._consumer_secret))
        if resp.status_code != 200:
            raise self._oauth_error(resp)
        doc = _json_body(resp)
        if not isinstance(doc, Mapping):
            doc = {}
        token = doc.get("access_token")
        try:
            if not isinstance(token, str) or not token:
                raise ValueError("no access_token")
            lifetime = _expires_in(doc.get("expires_in"))
        except ValueError as exc:
            # body=None: a 200 OAuth body may hold a token, which must not be stored or logged.
            raise DarajaUnexpectedResponse(
                f"OAuth answer unusable ({exc})", http_status=200, may_have_been_processed=True
            ) from None
        return CachedToken(access_token=token, expires_at=started + lifetime)

    def _oauth_error(self, resp: requests.Response) -> DarajaError:
        status = resp.status_code
        if 400 <= status < 500 and status != 429:
            env = _envelope(_json_body(resp))
            common: dict[str, Any] = {
                "http_status": status,
                "body": resp.text[:BODY_LIMIT],
                "may_have_been_processed": False,
            }
            if env is None:
                # Daraja answers a wrong key/secret with a bare HTTP 400 and an empty body.
                detail = "wrong consumer key or secret" if status in (400, 401) else "refused"
                return DarajaAuthError(f"OAuth: {detail} (HTTP {status})", **common)
            code, message, request_id = env
            if code == "400.008.01":
                detail = "invalid authentication type (must be HTTP Basic)"
            elif code == "400.008.02":
                detail = "invalid grant type (check the OAuth URL for stray characters)"
            else:
                detail = message or "refused"
            return DarajaAuthError(
                f"OAuth: {detail} ({code})",
                error_code=code,
                error_message=message,
                request_id=request_id,
                **common,
            )
        return _error_from_response(resp, "OAuth")

    # ----------------------------------------------------------------- HTTP

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        token: str | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP exchange with explicit timeouts; transport failures become DarajaErrors."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            resp = self._session.request(
                method,
                self._base_url + path,
                json=body,  # also sets Content-Type: application/json (its absence is a 400)
                headers=headers,
                auth=auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            err = _transport_error(exc, f"{method} {path.split('?')[0]}")
            logger.warning(
                "daraja %s %s failed after %.0f ms: %s (may_have_been_processed=%s)",
                method,
                path.split("?")[0],
                (time.monotonic() - started) * 1000,
                type(exc).__name__,
                err.may_have_been_processed,
            )
            raise err from exc
        env = _envelope(_json_body(resp)) if resp.status_code >= 300 else None
        logger.log(
            logging.INFO if resp.status_code < 400 else logging.WARNING,
            "daraja %s %s -> HTTP %s errorCode=%s (%.0f ms)",
            method,
            path.split("?")[0],
            resp.status_code,
            env[0] if env else None,
            (time.monotonic() - started) * 1000,
        )
        return resp

    def _token_before_post(self) -> str:
        """A token for the POST about to be sent. If fetching it fails, the POST was never
        sent, whatever the OAuth failure looked like: say so, so a push is not "unknown"."""
        try:
            return self.get_token()
        except DarajaError as exc:
            exc.may_have_been_processed = False
            raise

    def _post_with_token(self, path: str, body: Mapping[str, Any]) -> requests.Response:
        """POST with the bearer token; on an invalid-token answer refresh once and retry once.

        The retry is safe even for a push: an invalid-token answer means the gateway refused
        the call before it reached M-Pesa.
        """
        token = self._token_before_post()
        resp = self._send("POST", path, body=body, token=token)
        if not _is_invalid_token(resp):
            return resp
        logger.info("daraja %s: token refused, refreshing once and retrying", path)
        # Only clears the store if it still holds the refused token (another worker may
        # already have stored a fresh one, which we then reuse).
        self._token_store.invalidate(token)
        resp = self._send("POST", path, body=body, token=self._token_before_post())
        if _is_invalid_token(resp):
            err = _error_from_response(resp, f"POST {path}")
            if isinstance(err, DarajaInvalidToken):
                raise err
            raise DarajaInvalidToken(
                f"POST {path}: access token refused after a refresh (HTTP {resp.status_code})",
                http_status=resp.status_code,
                body=resp.text,
            )
        return resp

    # ----------------------------------------------------------------- STK

    def stk_push(self, req: StkPushRequest) -> StkPushAccepted:
        """Send an STK push. Returns only when Daraja accepted it (ResponseCode 0).

        Raises a DarajaError otherwise; on timeouts or dropped connections check
        ``may_have_been_processed`` — a prompt may be on the phone, so query, don't re-push.
        """
        password, timestamp = password_and_timestamp(
            req.business_short_code, req.passkey, self._now()
        )
        # Exactly the 11 documented keys: unknown extras (e.g. Remarks) are reported to fail.
        body = {
            "BusinessShortCode": req.business_short_code,
            "Password": password,
            "Timestamp": timestamp,
            "TransactionType": req.transaction_type,
            "Amount": req.amount,
            "PartyA": req.party_a,
            "PartyB": req.party_b,
            "PhoneNumber": req.phone_number,
            "CallBackURL": req.callback_url,
            "AccountReference": req.account_reference,
            "TransactionDesc": req.transaction_desc,
        }
        resp = self._post_with_token(STK_PUSH_PATH, body)
        doc = _json_body(resp)
        if resp.status_code != 200 or not isinstance(doc, Mapping) or "errorCode" in doc:
            raise _error_from_response(resp, "STK push")
        if not _response_code_is_zero(doc.get("ResponseCode")):
            # Daraja answered and did not accept: no prompt was sent.
            raise DarajaUnexpectedResponse(
                f"STK push not accepted: ResponseCode {doc.get('ResponseCode')!r} "
                f"{doc.get('ResponseDescription') or ''}".rstrip(),
                http_status=200,
                error_code=_text(doc.get("ResponseCode")),
                error_message=_text(doc.get("ResponseDescription")),
                body=resp.text,
            )
        merchant_id = _text(doc.get("MerchantRequestID"))
        checkout_id = _text(doc.get("CheckoutRequestID"))
        if not merchant_id or not checkout_id:
            # Accepted but unidentifiable: the prompt is probably live and we cannot track it.
            raise DarajaUnexpectedResponse(
                "STK push accepted without MerchantRequestID/CheckoutRequestID",
                http_status=200,
                body=resp.text,
                may_have_been_processed=True,
            )
        return StkPushAccepted(
            merchant_request_id=merchant_id,
            checkout_request_id=checkout_id,
            response_code="0",
            response_description=_text(doc.get("ResponseDescription")) or "",
            customer_message=_text(doc.get("CustomerMessage")) or "",
        )

    def stk_query(
        self, business_short_code: str, passkey: str, checkout_request_id: str
    ) -> StkQueryResult:
        """Ask for the outcome of a push. "Being processed" is ``pending=True``, not an error.

        Never retried here (rapid polling trips spike arrest); the caller's scheduler decides.
        """
        password, timestamp = password_and_timestamp(business_short_code, passkey, self._now())
        body = {
            "BusinessShortCode": business_short_code,
            "Password": password,
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        resp = self._post_with_token(STK_QUERY_PATH, body)
        doc = _json_body(resp)
        if _is_pending(resp):
            return StkQueryResult(
                pending=True,
                result_code=None,
                result_desc=_text(doc.get("errorMessage")),
                merchant_request_id=None,
                checkout_request_id=checkout_request_id,
                raw=doc,
            )
        if resp.status_code != 200 or not isinstance(doc, Mapping) or "errorCode" in doc:
            raise _error_from_response(resp, "STK query")
        result_code = _query_result_code(doc.get("ResultCode"))
        if not _response_code_is_zero(doc.get("ResponseCode")) or result_code is None:
            raise DarajaUnexpectedResponse(
                "STK query answer without ResponseCode 0 and a ResultCode",
                http_status=200,
                error_code=_text(doc.get("ResponseCode")),
                error_message=_text(doc.get("ResponseDescription")),
                body=resp.text,
            )
        return StkQueryResult(
            pending=False,
            result_code=result_code,
            result_desc=_text(doc.get("ResultDesc")),
            merchant_request_id=_text(doc.get("MerchantRequestID")),
            # What the answer names, not what we asked: the caller must compare the two
            # before believing it (a faulty gateway may answer about another checkout).
            checkout_request_id=(_text(doc.get("CheckoutRequestID")) or "").strip() or None,
            raw=doc,
        )


def _query_result_code(value: Any) -> str | None:
    """ResultCode is text in the query ("1032") but a number from some gateways; keep text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return str(int(text)) if text.isascii() and text.isdigit() and len(text) < 20 else text
    return None
