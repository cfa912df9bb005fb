"""What the chat adds: seq, client ids, read times, unread counters, revoked tokens.

Existing messages are numbered 1..N per conversation in the order they were
written, and each conversation's counters are computed from its rows, so an
existing database upgrades in place without losing anything.

Revision ID: 0002_chat_columns
Revises: 0001_miaubloom_base
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002_chat_columns"
down_revision = "0001_miaubloom_base"
branch_labels = None
depends_on = None

UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
# Compared byte for byte: MySQL's collations would equate "a", "A" and "a ".
CLIENT_ID = sa.String(64).with_variant(mysql.VARBINARY(256), "mysql", "mariadb")

NUMBER_MESSAGES = """
UPDATE Mensajes SET seq = (
    SELECT n.rn FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY conversacion_id ORDER BY created_at, id) AS rn
        FROM Mensajes) AS n
    WHERE n.id = Mensajes.id)
"""
NUMBER_MESSAGES_MYSQL = """
UPDATE Mensajes m JOIN (
    SELECT id, ROW_NUMBER() OVER (
        PARTITION BY conversacion_id ORDER BY created_at, id) AS rn
    FROM Mensajes) n ON n.id = m.id
SET m.seq = n.rn
"""
COUNT_PER_CONVERSATION = """
UPDATE Conversaciones SET
    last_seq = COALESCE((SELECT MAX(m.seq) FROM Mensajes m
                         WHERE m.conversacion_id = Conversaciones.id), 0),
    no_leidos_psicologo = (SELECT COUNT(*) FROM Mensajes m
                           WHERE m.conversacion_id = Conversaciones.id
                             AND m.remitente_id <> Conversaciones.psicologo_id AND m.leido = 0),
    no_leidos_paciente = (SELECT COUNT(*) FROM Mensajes m
                          WHERE m.conversacion_id = Conversaciones.id
                            AND m.remitente_id <> Conversaciones.paciente_id AND m.leido = 0)
"""


def upgrade():
    mysql_like = op.get_bind().dialect.name in ("mysql", "mariadb")
    with op.batch_alter_table("Conversaciones") as batch:
        for column in ("last_seq", "no_leidos_psicologo", "no_leidos_paciente"):
            batch.add_column(sa.Column(column, sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("Mensajes") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("client_id", CLIENT_ID, nullable=True))
        batch.add_column(sa.Column("leido_at", TIMESTAMP, nullable=True))
    op.execute(NUMBER_MESSAGES_MYSQL if mysql_like else NUMBER_MESSAGES)
    op.execute(COUNT_PER_CONVERSATION)
    with op.batch_alter_table("Mensajes") as batch:
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint(
            "uq_Mensajes_conversacion_id_seq", ["conversacion_id", "seq"]
        )
        batch.create_unique_constraint(
            "uq_Mensajes_conversacion_id_remitente_id_client_id",
            ["conversacion_id", "remitente_id", "client_id"],
        )
        batch.create_index("ix_Mensajes_conversacion_id_leido", ["conversacion_id", "leido"])
    op.create_table(
        "chat_tokens_revocados",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_chat_tokens_revocados"),
        **UTF8MB4,
    )
    op.create_index("ix_chat_tokens_revocados_expires_at", "chat_tokens_revocados", ["expires_at"])


def downgrade():
    op.drop_table("chat_tokens_revocados")
    with op.batch_alter_table("Mensajes") as batch:
        batch.drop_index("ix_Mensajes_conversacion_id_leido")
        batch.drop_constraint("uq_Mensajes_conversacion_id_remitente_id_client_id", type_="unique")
        batch.drop_constraint("uq_Mensajes_conversacion_id_seq", type_="unique")
        batch.drop_column("leido_at")
        batch.drop_column("client_id")
        batch.drop_column("seq")
    with op.batch_alter_table("Conversaciones") as batch:
        for column in ("no_leidos_paciente", "no_leidos_psicologo", "last_seq"):
            batch.drop_column(column)
