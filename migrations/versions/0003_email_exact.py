"""E-mail addresses matched exactly: stored normalised, compared byte for byte.

MySQL's default collations equate "pác1@x" with "pac1@x" and "PAC1@x": two
addresses were one account. After this revision Users.email is utf8mb4_bin
(still VARCHAR of its length, as the MiauBloom app's schema has it) and every
stored address is in the one form the chat and the app look it up in:
trimmed, lower-case, NFC.

Before changing anything it looks for addresses that this would make one, or
that the old collation already made one (equal after the normalisation, or
equal under the column's current collation). If there are any, it changes
nothing and stops with the list: which account keeps which address is a
person's decision (merging would hand one person's conversations to another),
so it is not guessed here. Rename or merge those accounts, then upgrade again.

Revision ID: 0003_email_exact
Revises: 0004_message_versions
Create Date: 2026-12-02
"""

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003_email_exact"
down_revision = "0004_message_versions"
branch_labels = None
depends_on = None


class EmailCollision(RuntimeError):
    """Addresses that would be one account; nothing was changed."""


def normalized(email: str) -> str:
    """The stored form (the chat's auth.normalize_email, frozen as of this revision)."""
    return unicodedata.normalize("NFC", email.strip().lower())


def collisions(bind) -> list[list[tuple[str, str]]]:
    """Groups of (id, email) that are one address after the normalisation or under the old collation."""
    rows = bind.execute(sa.text("SELECT id, email FROM Users ORDER BY id")).all()
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for user_id, email in rows:
        groups[normalized(email)].append((user_id, email))
    found = [group for group in groups.values() if len(group) > 1]
    # Equal under the column's own collation (a table without its unique index could hold them).
    same = bind.execute(
        sa.text(
            "SELECT a.id, a.email, b.id, b.email FROM Users a JOIN Users b "
            "ON a.email = b.email AND a.id < b.id"
        )
    ).all()
    seen = {pair for group in found for pair in group}
    for a_id, a_email, b_id, b_email in same:
        pair = [(a_id, a_email), (b_id, b_email)]
        if not set(pair) <= seen:
            found.append(pair)
            seen.update(pair)
    return found


def report(found: list[list[tuple[str, str]]]) -> str:
    """The refusal, listing every group."""
    lines = [
        f"0003_email_exact: {len(found)} group(s) of accounts whose e-mail addresses would be "
        "one address (equal once trimmed, lower-cased and NFC-normalised, or equal under the "
        "column's current collation). Nothing was changed. Give each account its own address "
        "(or merge them), then run the upgrade again:"
    ]
    for group in found:
        # ascii(): two spellings that look alike on a terminal are told apart.
        lines.append("  - " + "; ".join(f"Users.id={uid} email={email!a}" for uid, email in group))
    return "\n".join(lines)


def _email_column(bind) -> tuple[int, bool]:
    """The email column's length and nullability on MySQL (the app's is VARCHAR(191))."""
    length, nullable = bind.execute(
        sa.text(
            "SELECT CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Users' AND COLUMN_NAME = 'email'"
        )
    ).one()
    return int(length), nullable == "YES"


def _set_collation(bind, collation: str) -> None:
    length, nullable = _email_column(bind)
    null = "NULL" if nullable else "NOT NULL"
    op.execute(
        f"ALTER TABLE Users MODIFY email VARCHAR({length}) "
        f"CHARACTER SET utf8mb4 COLLATE {collation} {null}"
    )


def upgrade():
    bind = op.get_bind()
    found = collisions(bind)
    if found:
        raise EmailCollision(report(found))
    if bind.dialect.name in ("mysql", "mariadb"):
        # Binary first: an address normalised below may equal another under the old collation.
        _set_collation(bind, "utf8mb4_bin")
    # SQLite compares text byte for byte already (BINARY): only the stored forms change.
    rows = bind.execute(sa.text("SELECT id, email FROM Users")).all()
    for user_id, email in rows:
        if normalized(email) != email:
            bind.execute(
                sa.text("UPDATE Users SET email = :email WHERE id = :id"),
                {"email": normalized(email), "id": user_id},
            )


def downgrade():
    # Back to the table's default collation; the addresses stay normalised. Refused by the
    # unique index if exact matching let in two addresses the old collation equates.
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        table_collation = bind.execute(
            sa.text(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Users'"
            )
        ).scalar_one()
        _set_collation(bind, table_collation)
