"""Security headers on every page and API response."""

from __future__ import annotations

from flask import Response, current_app, request

from config import is_production

# The page: scripts and styles from this origin only (no inline script), never framed.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' {ws}; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# JSON: nothing to load, nothing to run.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def secure(response: Response) -> Response:
    """Add CSP, nosniff, frame denial and no-store (after_request hook)."""
    headers = response.headers
    is_api = request.path.startswith("/api/")
    csp = API_CSP if is_api else PAGE_CSP.format(ws=f"ws://{request.host} wss://{request.host}")
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if is_api:
        # Health conversations: no cache along the way may keep a copy.
        headers["Cache-Control"] = "no-store"
    if is_production(current_app.config):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
