"""The audit log: one JSON line per security event, never message content, tokens or passwords."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from flask import Flask

log = logging.getLogger("miaubloom.audit")

# Only these fields are ever written: ids, addresses, names of events and codes, no free text.
FIELDS = (
    "userId",
    "ip",
    "sid",
    "socketEvent",
    "method",
    "path",
    "status",
    "code",
    "conversacionId",
    "formato",
)


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The audit fields of a record, as JSON."""
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": record.msg}
        fields = getattr(record, "audit", {})
        line.update({k: fields[k] for k in FIELDS if fields.get(k) is not None})
        return json.dumps(line, ensure_ascii=False)


class _Stderr(logging.StreamHandler):
    """stderr as it is at each write (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write to the current stderr."""
        self.setStream(sys.stderr)
        super().emit(record)


def init_app(app: Flask) -> None:
    """Write the audit log to AUDIT_LOG, or to stderr when unset."""
    path = app.config.get("AUDIT_LOG") or ""
    for old in [h for h in log.handlers if getattr(h, "miaubloom_audit", False)]:
        log.removeHandler(old)
        old.close()
    handler = logging.FileHandler(path, encoding="utf-8") if path else _Stderr()
    handler.miaubloom_audit = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonLines())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def record(event: str, **fields: object) -> None:
    """Write one audit line: event plus any of FIELDS."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not an audit field: {sorted(unknown)}")
    log.info(event, extra={"audit": fields})
