"""Response headers every page gets: CSP, framing, sniffing, referrer, HSTS, caching."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

# No inline script or style anywhere (tests/test_security_headers.py greps the templates), so
# an injected <script> or style attribute does nothing. img-src allows data: for the blank
# favicon in templates/base.html; everything else, htmx's requests included, is same-origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
HSTS = "max-age=31536000; includeSubDomains"
NO_STORE = "no-store"
# Only vendored files carry their version in their name (static/vendor/htmx-2.0.11.min.js);
# app.css and counter.js keep Flask's revalidate-every-time default, since they change in place.
VERSIONED_STATIC = "vendor/"
LONG_CACHE = "public, max-age=31536000, immutable"


def _is_https() -> bool:
    # is_secure follows X-Forwarded-Proto only behind a trusted proxy (ProxyFix); a BASE_URL of
    # https:// says the site is served over HTTPS even when a proxy does not say so.
    return request.is_secure or current_app.config["BASE_URL"].startswith("https://")


def add_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers that predate CSP 2
    headers["X-Content-Type-Options"] = "nosniff"
    # Page addresses carry searched phone numbers and receipts (/cashier/?q=...) and the
    # virtual phone's number: no other site learns them, not even our host name.
    headers["Referrer-Policy"] = "same-origin"
    if _is_https():
        headers["Strict-Transport-Security"] = HSTS
    if request.endpoint == "static":
        filename = (request.view_args or {}).get("filename", "")
        if response.status_code in (200, 304) and filename.startswith(VERSIONED_STATIC):
            headers["Cache-Control"] = LONG_CACHE
    else:
        # Every other response may hold payment data, a callback secret or a CSRF token: a
        # shared computer's cache or the back button must not show it to the next person.
        headers["Cache-Control"] = NO_STORE
    return response


def register(app: Flask) -> None:
    """Send the headers with every response of `app`, error pages and redirects included."""
    app.after_request(add_headers)
