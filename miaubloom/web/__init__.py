"""The chat page: a template and static files, no build step."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static")


@bp.get("/")
def index() -> str:
    """The chat page."""
    return render_template("index.html")
