"""v1.2: message versions, tombstones and folded search text.

Every existing message becomes version 1, not edited, not deleted, and gets
its folded search text in chat_mensajes_busqueda (chat/folding.py, computed
here in batches, so an existing database upgrades in place; the app's own
columns are left as they are, only new nullable or defaulted ones added).
Earlier versions of edited messages go to chat_mensajes_versiones;
chat_mensajes_retenidos keeps deleted text only when the operator turns
DELETED_RETENTION on.

Revision ID: 0004_message_versions
Revises: 0005_notifications
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from miaubloom.chat.folding import fold

revision = "0004_message_versions"
down_revision = "0005_notifications"
branch_labels = None
depends_on = None

UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
TEXT = sa.Text().with_variant(mysql.TEXT(charset="utf8mb4"), "mysql", "mariadb")
FOLDED = sa.Text().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
BATCH = 2000


def _fill_search_text() -> None:
    """Fold every message's text into chat_mensajes_busqueda, a batch at a time in key order."""
    conn = op.get_bind()
    binary = conn.dialect.name in ("mysql", "mariadb")
    m = sa.table(
        "Mensajes",
        sa.column("conversacion_id", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("contenido"),
    )
    busqueda = sa.table(
        "chat_mensajes_busqueda",
        sa.column("conversacion_id"),
        sa.column("seq"),
        sa.column("busqueda"),
    )
    after = ("", 0)
    while True:
        rows = conn.execute(
            sa.select(m.c.conversacion_id, m.c.seq, m.c.contenido)
            .where(sa.tuple_(m.c.conversacion_id, m.c.seq) > sa.tuple_(*after))
            .order_by(m.c.conversacion_id, m.c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        folded = [
            {
                "conversacion_id": cid,
                "seq": seq,
                "busqueda": fold(text or "").encode() if binary else fold(text or ""),
            }
            for cid, seq, text in rows
        ]
        conn.execute(busqueda.insert(), folded)
        after = (rows[-1][0], rows[-1][1])


def _like_mensajes_id() -> dict:
    """Table options giving the key columns the collation of Mensajes' ids, as MySQL's foreign keys need.

    The app's own database (Prisma) uses utf8mb4_unicode_ci; ours the server's default.
    """
    conn = op.get_bind()
    if conn.dialect.name not in ("mysql", "mariadb"):
        return {}
    collation = conn.execute(
        sa.text(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "DATABASE() AND TABLE_NAME = 'Mensajes' AND COLUMN_NAME = 'id'"
        )
    ).scalar()
    return {"mysql_collate": collation, "mariadb_collate": collation} if collation else {}


def upgrade():
    with op.batch_alter_table("Mensajes") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("editado_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("eliminado_at", TIMESTAMP, nullable=True))
    op.create_table(
        "chat_mensajes_busqueda",
        sa.Column("conversacion_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("busqueda", FOLDED, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversacion_id", "seq"],
            ["Mensajes.conversacion_id", "Mensajes.seq"],
            name="fk_chat_mensajes_busqueda_mensaje",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversacion_id", "seq", name="pk_chat_mensajes_busqueda"),
        sqlite_with_rowid=False,
        **UTF8MB4,
        **_like_mensajes_id(),
    )
    _fill_search_text()
    for table in ("chat_mensajes_versiones", "chat_mensajes_retenidos"):
        retained = table == "chat_mensajes_retenidos"
        op.create_table(
            table,
            sa.Column("mensaje_id", sa.String(36), nullable=False),
            sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("contenido", TEXT, nullable=False),
            sa.Column("editado_at", TIMESTAMP, nullable=True),
            *([sa.Column("eliminado_at", TIMESTAMP, nullable=False)] if retained else []),
            sa.ForeignKeyConstraint(
                ["mensaje_id"], ["Mensajes.id"], name=f"fk_{table}_mensaje_id", ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("mensaje_id", "version", name=f"pk_{table}"),
            **UTF8MB4,
            **_like_mensajes_id(),
        )


def downgrade():
    op.drop_table("chat_mensajes_retenidos")
    op.drop_table("chat_mensajes_versiones")
    op.drop_table("chat_mensajes_busqueda")
    with op.batch_alter_table("Mensajes") as batch:
        for column in ("eliminado_at", "editado_at", "version"):
            batch.drop_column(column)
