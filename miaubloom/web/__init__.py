"""The chat page: a template and static files, no build step."""

from __future__ import annotations

from flask import Blueprint, render_template

# Its Content-Security-Policy (no inline script) comes from security/headers.py.
bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/web/static",
)


@bp.get("/")
def index() -> str:
    """The chat page."""
    return render_template("index.html")
