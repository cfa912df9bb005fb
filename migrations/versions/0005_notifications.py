"""E-mail notifications: where each member's notifications stand, and each person's setting.

Two chat-owned tables, so the app's own tables are left as they are; no
foreign keys into them (a key would have to match their collation). Existing
databases gain empty tables: nobody has been notified yet, and everyone is
notified by default.

Revision ID: 0005_notifications
Revises: 0002_chat_columns
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005_notifications"
down_revision = "0002_chat_columns"
branch_labels = None
depends_on = None

UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "chat_notificaciones",
        sa.Column("conversacion_id", sa.String(36), nullable=False),
        sa.Column("usuario_id", sa.String(36), nullable=False),
        sa.Column("cubierto_seq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("enviado_at", TIMESTAMP, nullable=True),
        sa.Column("estado", sa.String(16), nullable=True),
        sa.Column("intento", sa.String(36), nullable=True),
        sa.Column("plazo", TIMESTAMP, nullable=True),
        sa.Column("hasta_seq", sa.Integer(), nullable=True),
        sa.Column("fallos", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("conversacion_id", "usuario_id", name="pk_chat_notificaciones"),
        **UTF8MB4,
    )
    op.create_table(
        "chat_preferencias",
        sa.Column("usuario_id", sa.String(36), nullable=False),
        sa.Column("notificar_correo", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("usuario_id", name="pk_chat_preferencias"),
        **UTF8MB4,
    )


def downgrade():
    op.drop_table("chat_preferencias")
    op.drop_table("chat_notificaciones")
