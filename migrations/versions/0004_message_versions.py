"""v1.2: message versions, tombstones and folded search text.

Every existing message becomes version 1, not edited, not deleted, and gets
its folded search text (chat/folding.py, computed here in batches so an
existing database upgrades in place). Earlier versions of edited messages go
to chat_mensajes_versiones; chat_mensajes_retenidos keeps deleted text only
when the operator turns DELETED_RETENTION on.

Revision ID: 0004_message_versions
Revises: 0002_chat_columns
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from miaubloom.chat.folding import fold

revision = "0004_message_versions"
down_revision = "0002_chat_columns"
branch_labels = None
depends_on = None

UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
TEXT = sa.Text().with_variant(mysql.TEXT(charset="utf8mb4"), "mysql", "mariadb")
FOLDED = sa.Text().with_variant(
    mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)
BATCH = 2000


def _fill_search_text() -> None:
    """Fold every message's text, a batch at a time in id order."""
    conn = op.get_bind()
    mensajes = sa.table(
        "Mensajes", sa.column("id", sa.String), sa.column("contenido"), sa.column("busqueda")
    )
    last = ""
    while True:
        rows = conn.execute(
            sa.select(mensajes.c.id, mensajes.c.contenido)
            .where(mensajes.c.id > last)
            .order_by(mensajes.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            mensajes.update()
            .where(mensajes.c.id == sa.bindparam("mid"))
            .values(busqueda=sa.bindparam("folded")),
            [{"mid": mid, "folded": fold(contenido or "")} for mid, contenido in rows],
        )
        last = rows[-1][0]


def _like_mensajes_id() -> dict:
    """Table options giving mensaje_id the collation of Mensajes.id, as MySQL's foreign keys need.

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
        batch.add_column(sa.Column("busqueda", FOLDED, nullable=True))
    _fill_search_text()
    with op.batch_alter_table("Mensajes") as batch:
        batch.alter_column("busqueda", existing_type=FOLDED, nullable=False)
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
    with op.batch_alter_table("Mensajes") as batch:
        for column in ("busqueda", "eliminado_at", "editado_at", "version"):
            batch.drop_column(column)
