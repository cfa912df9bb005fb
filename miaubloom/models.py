"""The MiauBloom tables, as typed SQLAlchemy 2 mappings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from .extensions import db

if TYPE_CHECKING:
    # db.Model is built at run time from extensions.Base (Flask-SQLAlchemy adds its
    # mixins); to the type checker the typed declarative base is what it is.
    from .extensions import Base as Model
else:
    Model = db.Model

ROL_PACIENTE = "Paciente"
ROL_PSICOLOGO = "Psicólogo"


def new_id() -> str:
    """A new primary key, as the MiauBloom app makes them."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (how the columns store it)."""
    return datetime.now(UTC).replace(tzinfo=None)


# Every table's text is utf8mb4 on MySQL, whatever the server's default.
UTF8MB4 = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

# Addresses compared byte for byte: MySQL's default collations equate "pác1@…" with
# "pac1@…" (two addresses, one account). Binary, still VARCHAR, as the app's schema has it;
# stored normalised (auth.normalize_email), so the collation's PAD SPACE never matters.
EmailString = String(255).with_variant(
    mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)

# Millisecond precision on MySQL, where DATETIME defaults to whole seconds.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
# The app's text is utf8mb4; TEXT is enough for MAX_MESSAGE_LENGTH code points.
LongText = Text().with_variant(mysql.TEXT(charset="utf8mb4"), "mysql", "mariadb")


class ExactString(TypeDecorator[str]):
    """A string compared byte for byte on every backend.

    MySQL's collations equate "a", "A" and "a " (PAD SPACE), which would make
    two different client ids collide; there it is stored as VARBINARY.
    """

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """VARBINARY on MySQL/MariaDB, plain text (binary collation) elsewhere."""
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(256))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | bytes | None:
        """Encode to UTF-8 where the column is binary."""
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        """Decode from UTF-8 where the column is binary."""
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8")
        return value


class FoldedText(TypeDecorator[str]):
    """Text folded by chat/folding.py, compared byte for byte: a search does no collation work.

    MEDIUMBLOB on MySQL/MariaDB (folding may lengthen a text: "ß" becomes "ss"),
    plain text elsewhere.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """MEDIUMBLOB on MySQL/MariaDB, TEXT elsewhere."""
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.MEDIUMBLOB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | bytes | None:
        """Encode to UTF-8 where the column is binary."""
        if value is not None and dialect.name in ("mysql", "mariadb"):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        """Decode from UTF-8 where the column is binary."""
        if isinstance(value, bytes | bytearray):
            return bytes(value).decode("utf-8")
        return value


class User(Model):
    """A MiauBloom account: a patient or a psychologist."""

    __tablename__ = "Users"
    __table_args__ = UTF8MB4

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(EmailString, unique=True)
    password: Mapped[str] = mapped_column(String(255))
    nombre_completo: Mapped[str] = mapped_column(String(255))
    rol: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)

    @property
    def is_psicologo(self) -> bool:
        """True for psychologists."""
        return self.rol == ROL_PSICOLOGO


class PerfilPsicologo(Model):
    """A psychologist's profile; patients are assigned to it."""

    __tablename__ = "Perfiles_Psicologo"
    __table_args__ = UTF8MB4

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("Users.id", ondelete="CASCADE"), primary_key=True
    )
    identificacion: Mapped[str] = mapped_column(String(50))
    registro_profesional: Mapped[str] = mapped_column(String(100), unique=True)
    especialidad: Mapped[str] = mapped_column(String(255))
    titulo_universitario: Mapped[str] = mapped_column(String(255))
    foto_perfil: Mapped[str | None] = mapped_column(String(500))


class PerfilPaciente(Model):
    """A patient's profile, with the psychologist assigned to them (if any)."""

    __tablename__ = "Perfiles_Paciente"
    __table_args__ = UTF8MB4

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("Users.id", ondelete="CASCADE"), primary_key=True
    )
    psicologo_asignado_id: Mapped[str | None] = mapped_column(
        String(36),
        ForeignKey("Perfiles_Psicologo.user_id", ondelete="SET NULL"),
        index=True,
    )
    fecha_nacimiento: Mapped[datetime | None] = mapped_column(Timestamp)
    genero: Mapped[str | None] = mapped_column(String(50))
    contacto_emergencia: Mapped[str | None] = mapped_column(String(255))
    nickname_avatar: Mapped[str] = mapped_column(String(100))
    foto_perfil: Mapped[str | None] = mapped_column(String(500))


class Conversacion(Model):
    """The one conversation between a psychologist and a patient."""

    __tablename__ = "Conversaciones"
    __table_args__ = (UniqueConstraint("psicologo_id", "paciente_id"), UTF8MB4)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    psicologo_id: Mapped[str] = mapped_column(String(36), ForeignKey("Users.id"), index=True)
    paciente_id: Mapped[str] = mapped_column(String(36), ForeignKey("Users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    # Added by the chat: the last seq handed out, and each member's unread count,
    # kept in the same transaction as the messages so reads never count rows.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    no_leidos_psicologo: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    no_leidos_paciente: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Mensaje(Model):
    """One message, numbered by seq within its conversation."""

    __tablename__ = "Mensajes"
    __table_args__ = (
        UniqueConstraint("conversacion_id", "seq"),
        UniqueConstraint("conversacion_id", "remitente_id", "client_id"),
        Index("ix_Mensajes_conversacion_id_leido", "conversacion_id", "leido"),
        UTF8MB4,
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    conversacion_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("Conversaciones.id", ondelete="CASCADE")
    )
    remitente: Mapped[str] = mapped_column(String(20))
    remitente_id: Mapped[str] = mapped_column(String(36), ForeignKey("Users.id"))
    contenido: Mapped[str] = mapped_column(LongText)
    leido: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    # Added by the chat.
    seq: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str | None] = mapped_column(ExactString)
    leido_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Added by v1.2 (edit, delete): the current version's number and when it was
    # written, and when the message was deleted (its text is then "").
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    editado_at: Mapped[datetime | None] = mapped_column(Timestamp)
    eliminado_at: Mapped[datetime | None] = mapped_column(Timestamp)

    @property
    def eliminado(self) -> bool:
        """Whether the message was deleted (a tombstone)."""
        return self.eliminado_at is not None


class MensajeBusqueda(Model):
    """A message's current text folded for search (v1.2), one narrow row per message.

    Clustered by (conversacion_id, seq), apart from the wide Mensajes rows, so a
    search that reads a whole conversation reads only this: ~5x faster on MariaDB
    than the same scan through Mensajes (bench/search_conversation.py).
    Written with the message, rewritten by an edit, removed by a deletion.
    """

    __tablename__ = "chat_mensajes_busqueda"
    __table_args__ = (
        ForeignKeyConstraint(
            ["conversacion_id", "seq"],
            ["Mensajes.conversacion_id", "Mensajes.seq"],
            ondelete="CASCADE",
        ),
        {**UTF8MB4, "sqlite_with_rowid": False},
    )

    conversacion_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    busqueda: Mapped[str] = mapped_column(FoldedText)


class MensajeVersion(Model):
    """An earlier version of an edited message (the current one is in Mensajes)."""

    __tablename__ = "chat_mensajes_versiones"
    __table_args__ = UTF8MB4

    mensaje_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("Mensajes.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    contenido: Mapped[str] = mapped_column(LongText)
    # When this version was written: null for version 1 (sent at the message's created_at).
    editado_at: Mapped[datetime | None] = mapped_column(Timestamp)


class MensajeRetenido(Model):
    """A deleted message's text and earlier versions, kept when DELETED_RETENTION=keep.

    For the clinical record only: no route or event reads this table.
    """

    __tablename__ = "chat_mensajes_retenidos"
    __table_args__ = UTF8MB4

    mensaje_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("Mensajes.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    contenido: Mapped[str] = mapped_column(LongText)
    editado_at: Mapped[datetime | None] = mapped_column(Timestamp)
    eliminado_at: Mapped[datetime] = mapped_column(Timestamp)


class TokenRevocado(Model):
    """A token ended by logout, refused until it would have expired anyway."""

    __tablename__ = "chat_tokens_revocados"
    __table_args__ = UTF8MB4

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class Notificacion(Model):
    """Where one member's e-mail notifications of one conversation stand (chat-owned).

    No foreign keys: the app's tables keep their own collation, which a key
    from a chat table would have to match. See miaubloom/notify/ledger.py.
    """

    __tablename__ = "chat_notificaciones"
    __table_args__ = UTF8MB4

    conversacion_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    usuario_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Messages up to this seq need no mail: mailed about, seen online, or read.
    cubierto_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the last mail was accepted by the mail server (the interval starts there).
    enviado_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # The mail in flight: None, "reclamado" (claimed, before DATA) or "enviando" (DATA begun).
    estado: Mapped[str | None] = mapped_column(String(16))
    intento: Mapped[str | None] = mapped_column(String(36))
    plazo: Mapped[datetime | None] = mapped_column(Timestamp)
    hasta_seq: Mapped[int | None] = mapped_column(Integer)
    # Mail server failures of the claim in flight (its backoff grows with them).
    fallos: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Preferencias(Model):
    """A person's chat settings (chat-owned): whether unread messages are notified by e-mail."""

    __tablename__ = "chat_preferencias"
    __table_args__ = UTF8MB4

    usuario_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notificar_correo: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
