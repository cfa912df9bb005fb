"""Text folded for search: case and accents ignored alike on every database.

A message's folded text is written with it (and with each edit), so a search
compares bytes in SQL: no collation, no per-row function, the same answer on
SQLite and MariaDB.
"""

from __future__ import annotations

import unicodedata

_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


def fold(text: str) -> str:
    """Lowercase, without accents or other combining marks ("Dormí" → "dormi")."""
    if text.isascii():  # most messages: no decomposition to do
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def contains_pattern(query: str) -> str:
    """A LIKE pattern (escape character backslash) for folded text containing the query."""
    return "%" + fold(query).translate(_LIKE_SPECIAL) + "%"
