"""The few htmx helpers we need: detect htmx requests and stop polling (HTTP 286)."""

from __future__ import annotations

from flask import Response, request

STOP_POLLING = 286
#: The event (HX-Trigger) that makes the counter's day totals fetch themselves again.
TOTALS_CHANGED = "totals-changed"


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def vary_on_htmx(response: Response) -> Response:
    """A URL that answers htmx with a fragment and browsers with a page must say so to caches."""
    response.vary.add("HX-Request")
    return response
