"""The MiauBloom app's tables as the original server found them.

An existing MiauBloom database already has these: stamp it at this revision
(`flask db stamp 0001_miaubloom_base`), then `flask db upgrade`.

Revision ID: 0001_miaubloom_base
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_miaubloom_base"
down_revision = None
branch_labels = None
depends_on = None

UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
TEXT = sa.Text().with_variant(mysql.TEXT(charset="utf8mb4"), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "Users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("nombre_completo", sa.String(255), nullable=False),
        sa.Column("rol", sa.String(20), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_Users"),
        sa.UniqueConstraint("email", name="uq_Users_email"),
        **UTF8MB4,
    )
    op.create_table(
        "Perfiles_Psicologo",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("identificacion", sa.String(50), nullable=False),
        sa.Column("registro_profesional", sa.String(100), nullable=False),
        sa.Column("especialidad", sa.String(255), nullable=False),
        sa.Column("titulo_universitario", sa.String(255), nullable=False),
        sa.Column("foto_perfil", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["Users.id"],
            name="fk_Perfiles_Psicologo_user_id_Users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_Perfiles_Psicologo"),
        sa.UniqueConstraint(
            "registro_profesional", name="uq_Perfiles_Psicologo_registro_profesional"
        ),
        **UTF8MB4,
    )
    op.create_table(
        "Perfiles_Paciente",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("psicologo_asignado_id", sa.String(36), nullable=True),
        sa.Column("fecha_nacimiento", TIMESTAMP, nullable=True),
        sa.Column("genero", sa.String(50), nullable=True),
        sa.Column("contacto_emergencia", sa.String(255), nullable=True),
        sa.Column("nickname_avatar", sa.String(100), nullable=False),
        sa.Column("foto_perfil", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["psicologo_asignado_id"],
            ["Perfiles_Psicologo.user_id"],
            name="fk_Perfiles_Paciente_psicologo_asignado_id_Perfiles_Psicologo",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["Users.id"], name="fk_Perfiles_Paciente_user_id_Users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_Perfiles_Paciente"),
        **UTF8MB4,
    )
    op.create_index(
        "ix_Perfiles_Paciente_psicologo_asignado_id", "Perfiles_Paciente", ["psicologo_asignado_id"]
    )
    op.create_table(
        "Conversaciones",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("psicologo_id", sa.String(36), nullable=False),
        sa.Column("paciente_id", sa.String(36), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["paciente_id"], ["Users.id"], name="fk_Conversaciones_paciente_id_Users"
        ),
        sa.ForeignKeyConstraint(
            ["psicologo_id"], ["Users.id"], name="fk_Conversaciones_psicologo_id_Users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_Conversaciones"),
        sa.UniqueConstraint(
            "psicologo_id", "paciente_id", name="uq_Conversaciones_psicologo_id_paciente_id"
        ),
        **UTF8MB4,
    )
    op.create_index("ix_Conversaciones_paciente_id", "Conversaciones", ["paciente_id"])
    op.create_index("ix_Conversaciones_psicologo_id", "Conversaciones", ["psicologo_id"])
    op.create_index("ix_Conversaciones_updated_at", "Conversaciones", ["updated_at"])
    op.create_table(
        "Mensajes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("conversacion_id", sa.String(36), nullable=False),
        sa.Column("remitente", sa.String(20), nullable=False),
        sa.Column("remitente_id", sa.String(36), nullable=False),
        sa.Column("contenido", TEXT, nullable=False),
        sa.Column("leido", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversacion_id"],
            ["Conversaciones.id"],
            name="fk_Mensajes_conversacion_id_Conversaciones",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["remitente_id"], ["Users.id"], name="fk_Mensajes_remitente_id_Users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_Mensajes"),
        **UTF8MB4,
    )


def downgrade():
    op.drop_table("Mensajes")
    op.drop_table("Conversaciones")
    op.drop_table("Perfiles_Paciente")
    op.drop_table("Perfiles_Psicologo")
    op.drop_table("Users")
