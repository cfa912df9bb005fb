"""Migrations: they build the schema the models describe, and upgrade the app's database in place."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import stamp, upgrade

from config import TestConfig
from miaubloom import create_app
from miaubloom.auth import Caller
from miaubloom.chat import revisions, search, service
from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje, MensajeBusqueda
from tests.conftest import SERVER_URL, on_mysql

# The app's tables as Prisma created them on MySQL (names, types and constraint names of its own).
PRISMA_DDL = [
    """CREATE TABLE `Users` (
        `id` VARCHAR(191) NOT NULL, `email` VARCHAR(191) NOT NULL, `password` VARCHAR(191) NOT NULL,
        `nombre_completo` VARCHAR(191) NOT NULL, `rol` ENUM('Paciente', 'Psicólogo') NOT NULL,
        `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), `updated_at` DATETIME(3) NOT NULL,
        UNIQUE INDEX `Users_email_key`(`email`), PRIMARY KEY (`id`)
    ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci""",
    """CREATE TABLE `Perfiles_Psicologo` (
        `user_id` VARCHAR(191) NOT NULL, `identificacion` VARCHAR(191) NOT NULL,
        `registro_profesional` VARCHAR(191) NOT NULL, `especialidad` VARCHAR(191) NOT NULL,
        `titulo_universitario` VARCHAR(191) NOT NULL, `foto_perfil` VARCHAR(191) NULL,
        UNIQUE INDEX `Perfiles_Psicologo_registro_profesional_key`(`registro_profesional`),
        PRIMARY KEY (`user_id`),
        CONSTRAINT `Perfiles_Psicologo_user_id_fkey` FOREIGN KEY (`user_id`) REFERENCES `Users`(`id`) ON DELETE CASCADE
    ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci""",
    """CREATE TABLE `Perfiles_Paciente` (
        `user_id` VARCHAR(191) NOT NULL, `psicologo_asignado_id` VARCHAR(191) NULL,
        `fecha_nacimiento` DATETIME(3) NULL, `genero` VARCHAR(191) NULL,
        `contacto_emergencia` VARCHAR(191) NULL, `nickname_avatar` VARCHAR(191) NOT NULL,
        `foto_perfil` VARCHAR(191) NULL, PRIMARY KEY (`user_id`),
        CONSTRAINT `Perfiles_Paciente_user_id_fkey` FOREIGN KEY (`user_id`) REFERENCES `Users`(`id`) ON DELETE CASCADE,
        CONSTRAINT `Perfiles_Paciente_psicologo_asignado_id_fkey` FOREIGN KEY (`psicologo_asignado_id`)
            REFERENCES `Perfiles_Psicologo`(`user_id`) ON DELETE SET NULL
    ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci""",
    """CREATE TABLE `Conversaciones` (
        `id` VARCHAR(191) NOT NULL, `psicologo_id` VARCHAR(191) NOT NULL, `paciente_id` VARCHAR(191) NOT NULL,
        `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), `updated_at` DATETIME(3) NOT NULL,
        UNIQUE INDEX `Conversaciones_psicologo_id_paciente_id_key`(`psicologo_id`, `paciente_id`),
        PRIMARY KEY (`id`),
        CONSTRAINT `Conversaciones_psicologo_id_fkey` FOREIGN KEY (`psicologo_id`) REFERENCES `Users`(`id`),
        CONSTRAINT `Conversaciones_paciente_id_fkey` FOREIGN KEY (`paciente_id`) REFERENCES `Users`(`id`)
    ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci""",
    """CREATE TABLE `Mensajes` (
        `id` VARCHAR(191) NOT NULL, `conversacion_id` VARCHAR(191) NOT NULL,
        `remitente` ENUM('paciente', 'psicologo') NOT NULL, `remitente_id` VARCHAR(191) NOT NULL,
        `contenido` TEXT NOT NULL, `leido` BOOLEAN NOT NULL DEFAULT false,
        `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (`id`),
        CONSTRAINT `Mensajes_conversacion_id_fkey` FOREIGN KEY (`conversacion_id`) REFERENCES `Conversaciones`(`id`) ON DELETE CASCADE,
        CONSTRAINT `Mensajes_remitente_id_fkey` FOREIGN KEY (`remitente_id`) REFERENCES `Users`(`id`)
    ) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci""",
]


@pytest.fixture
def empty_database(tmp_path) -> Iterator[str]:
    """A database with no tables: a new MariaDB database, or a new SQLite file."""
    if not on_mysql():
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = f"miaubloom_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER_URL)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield SERVER_URL.rstrip("/") + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


def _drift(url: str) -> list:
    """Differences between the models and the migrated database (empty when they agree)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def test_upgrade_builds_the_schema_the_models_describe(empty_database):
    app = create_app(TestConfig(empty_database))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    assert _drift(empty_database) == []


def test_drift_is_detected(empty_database):
    # The check above can fail: a column the models lack shows up as drift.
    app = create_app(TestConfig(empty_database))
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE Mensajes ADD COLUMN extra INTEGER"))
        db.engine.dispose()
    assert any("extra" in str(diff) for diff in _drift(empty_database))


def _legacy_rows(conn, now: datetime) -> dict:
    """Users, profiles, two conversations and messages, as the app would have left them."""
    ids = {k: str(uuid.uuid4()) for k in ("psi", "pac", "pac2", "c1", "c2")}
    conn.execute(
        sa.text(
            "INSERT INTO Users (id, email, password, nombre_completo, rol, created_at, updated_at) "
            "VALUES (:id, :email, 'x', :nombre, :rol, :t, :t)"
        ),
        [
            {"id": ids["psi"], "email": "psi@app", "nombre": "Psi", "rol": "Psicólogo", "t": now},
            {"id": ids["pac"], "email": "pac@app", "nombre": "Pac", "rol": "Paciente", "t": now},
            {"id": ids["pac2"], "email": "pac2@app", "nombre": "Pac2", "rol": "Paciente", "t": now},
        ],
    )
    conn.execute(
        sa.text(
            "INSERT INTO Perfiles_Psicologo (user_id, identificacion, registro_profesional, "
            "especialidad, titulo_universitario) VALUES (:u, '1', 'R-1', 'e', 't')"
        ),
        {"u": ids["psi"]},
    )
    conn.execute(
        sa.text(
            "INSERT INTO Perfiles_Paciente (user_id, psicologo_asignado_id, nickname_avatar) "
            "VALUES (:u, :p, 'gato')"
        ),
        [{"u": ids["pac"], "p": ids["psi"]}, {"u": ids["pac2"], "p": ids["psi"]}],
    )
    conn.execute(
        sa.text(
            "INSERT INTO Conversaciones (id, psicologo_id, paciente_id, created_at, updated_at) "
            "VALUES (:id, :psi, :pac, :t, :t)"
        ),
        [
            {"id": ids["c1"], "psi": ids["psi"], "pac": ids["pac"], "t": now},
            {"id": ids["c2"], "psi": ids["psi"], "pac": ids["pac2"], "t": now},
        ],
    )
    # c1: 5 messages, alternating patient and psychologist, inserted newest first; the 2 oldest read.
    rows = []
    for n in range(5):
        sender = "pac" if n % 2 == 0 else "psi"
        rows.append({
            "id": str(uuid.uuid4()), "c": ids["c1"], "r": "paciente" if sender == "pac" else "psicologo",
            "rid": ids[sender], "txt": f"legacy {n} ñ 🌸", "leido": n < 2, "t": now + timedelta(seconds=n),
        })  # fmt: skip
    conn.execute(
        sa.text(
            "INSERT INTO Mensajes (id, conversacion_id, remitente, remitente_id, contenido, leido, "
            "created_at) VALUES (:id, :c, :r, :rid, :txt, :leido, :t)"
        ),
        list(reversed(rows)),
    )
    ids["messages"] = rows
    return ids


def test_existing_database_upgrades_in_place(empty_database):
    app = create_app(TestConfig(empty_database))
    now = datetime(2026, 1, 2, 3, 4, 5, 678000)
    with app.app_context():
        if on_mysql():
            # The app's own (Prisma) tables: stamp them as the base, then upgrade.
            with db.engine.begin() as conn:
                for ddl in PRISMA_DDL:
                    conn.execute(sa.text(ddl))
            stamp(revision="0001_miaubloom_base")
        else:
            upgrade(revision="0001_miaubloom_base")
        with db.engine.begin() as conn:
            ids = _legacy_rows(conn, now)
        upgrade()

        messages = (
            db.session.query(Mensaje)
            .filter_by(conversacion_id=ids["c1"])
            .order_by(Mensaje.seq)
            .all()
        )
        assert [m.contenido for m in messages] == [f"legacy {n} ñ 🌸" for n in range(5)]
        assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
        assert [m.id for m in messages] == [r["id"] for r in ids["messages"]]
        assert messages[0].created_at == now
        c1, c2 = db.session.get(Conversacion, ids["c1"]), db.session.get(Conversacion, ids["c2"])
        # Unread: the patient's messages 2 and 4 for the psychologist, message 3 for the patient.
        assert (c1.last_seq, c1.no_leidos_psicologo, c1.no_leidos_paciente) == (5, 2, 1)
        assert (c2.last_seq, c2.no_leidos_psicologo, c2.no_leidos_paciente) == (0, 0, 0)

        # The upgraded database works: the next message continues the numbering.
        far = datetime(2100, 1, 1)
        caller = Caller(ids["pac"], "Paciente", "pac@app", "t", far)
        sent = service.send_message(caller, ids["c1"], "después", "c-1")
        assert sent.mensaje.seq == 6
        assert service.send_message(caller, ids["c1"], "después", "C-1").mensaje.seq == 7
        assert service.send_message(caller, ids["c1"], "después", "c-1").created is False
        if on_mysql():  # the app's column, compared exactly from now on, its index kept
            assert _email_column(db.engine) == ("varchar", 191, "utf8mb4_bin", "NO", "UNI")

        # v1.2: every old message is version 1, not edited, not deleted, and searchable.
        legacy = db.session.scalars(
            sa.select(Mensaje).where(Mensaje.conversacion_id == ids["c1"]).order_by(Mensaje.seq)
        ).all()[:5]
        assert {(m.version, m.editado_at, m.eliminado) for m in legacy} == {(1, None, False)}
        folded = db.session.scalars(
            sa.select(MensajeBusqueda.busqueda)
            .where(MensajeBusqueda.conversacion_id == ids["c1"])
            .order_by(MensajeBusqueda.seq)
        ).all()
        assert folded == [f"legacy {n} n 🌸" for n in range(5)] + ["despues"] * 2
        psi = Caller(ids["psi"], "Psicólogo", "psi@app", "t", far)
        hits, _ = search.search_messages(psi, ids["c1"], "LEGACY 3 Ñ")
        assert [m.seq for m in hits] == [4]
        db.session.remove()
        first = legacy[0].id
        app.config["EDIT_WINDOW_SECONDS"] = 10**9  # the legacy rows were written long ago
        edited = revisions.edit_message(caller, first, "editado", 1)
        assert (edited.mensaje.version, edited.mensaje.contenido) == (2, "editado")
        versions = revisions.message_versions(psi, first)
        assert [v.contenido for v in versions] == ["legacy 0 ñ 🌸", "editado"]
        deleted = revisions.delete_message(caller, first)
        assert deleted.mensaje.eliminado and revisions.message_versions(psi, first) == []
        db.session.remove()
        db.engine.dispose()


def _email_column(engine) -> tuple:  # type: ignore[no-untyped-def]
    """Users.email on MySQL: type, length, collation, nullability, key."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.text(
                    "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, COLLATION_NAME, IS_NULLABLE, "
                    "COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = 'Users' AND COLUMN_NAME = 'email'"
                )
            ).one()
        )


def _before_email(app) -> str:  # type: ignore[no-untyped-def]
    """The revision 0003_email_exact follows (revisions are re-chained as branches land)."""
    with app.app_context():
        scripts = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        return scripts.get_revision("0003_email_exact").down_revision


def _users_before_email(app, emails: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A database just before 0003 holding users with these addresses, as another writer stored them."""
    ids = {email: str(uuid.uuid4()) for email in emails}
    with app.app_context():
        upgrade(revision=_before_email(app))
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO Users (id, email, password, nombre_completo, rol, created_at, "
                    "updated_at) VALUES (:id, :email, 'x', 'N', 'Paciente', :t, :t)"
                ),
                [{"id": i, "email": e, "t": datetime(2026, 1, 1)} for e, i in ids.items()],
            )
    return ids


def _stored(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with app.app_context(), db.engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, email FROM Users")).all())


def _revision(app) -> str:  # type: ignore[no-untyped-def]
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


NFD = "pa\u0301c1@test.miaubloom"  # "pác1" typed as a letter and a combining accent


def test_email_upgrade_normalises_addresses_and_compares_them_exactly(empty_database):
    app = create_app(TestConfig(empty_database))
    ids = _users_before_email(app, ["  Ana@Test.MiauBloom", NFD, "pac1@test.miaubloom"])
    with app.app_context():
        upgrade()
        db.engine.dispose()
    assert _stored(app) == {
        ids["  Ana@Test.MiauBloom"]: "ana@test.miaubloom",
        ids[NFD]: "p\u00e1c1@test.miaubloom",  # NFC
        ids["pac1@test.miaubloom"]: "pac1@test.miaubloom",
    }
    if on_mysql():
        with app.app_context():
            assert _email_column(db.engine)[2] == "utf8mb4_bin"
            # Exact now: an address the old collation equated with a stored one is another.
            with db.engine.begin() as conn:
                found = conn.execute(
                    sa.text("SELECT COUNT(*) FROM Users WHERE email = 'PAC1@test.miaubloom'")
                ).scalar_one()
            assert found == 0
            db.engine.dispose()


def test_email_upgrade_refuses_addresses_that_would_be_one_and_changes_nothing(empty_database):
    app = create_app(TestConfig(empty_database))
    nfc = "p\u00e1c1@test.miaubloom"
    # Distinct to both databases today (MariaDB's utf8mb4_general_ci tells NFD from NFC), one
    # address once normalised. SQLite, binary, also holds two spellings of one address.
    emails = [NFD, nfc, "ok@test.miaubloom"] + ([] if on_mysql() else ["Ana@x.com", "ana@x.com"])
    ids = _users_before_email(app, emails)
    before = _stored(app)
    with app.app_context():
        # Alembic's own command, to see the error (`flask db upgrade` prints it and exits 1).
        config = app.extensions["migrate"].migrate.get_config()
        with pytest.raises(RuntimeError) as refused:
            alembic_command.upgrade(config, "head")
        collation = _email_column(db.engine)[2] if on_mysql() else None
        db.engine.dispose()
    message = str(refused.value)
    assert "0003_email_exact" in message and "Nothing was changed" in message
    for email in (NFD, nfc) if on_mysql() else emails[:2] + emails[3:]:
        assert f"Users.id={ids[email]}" in message, email
    assert f"Users.id={ids['ok@test.miaubloom']}" not in message
    assert _stored(app) == before
    assert _revision(app) == _before_email(app)
    if on_mysql():
        assert collation == "utf8mb4_general_ci"
    # Once an operator gives each account its own address, the upgrade goes through.
    with app.app_context():
        with db.engine.begin() as conn:
            for email in [e for e in (NFD, "ana@x.com") if e in ids]:
                conn.execute(
                    sa.text("UPDATE Users SET email = :e WHERE id = :id"),
                    {
                        "e": "otra-" + str(uuid.uuid4())[:8] + "@test.miaubloom",
                        "id": ids[email],
                    },
                )
        upgrade()
        db.engine.dispose()
    assert _revision(app) == "0003_email_exact"


def test_notification_tables_are_added_in_place(empty_database):
    # A database at the chat's 0002 with rows in it gains the two chat-owned tables, empty,
    # and keeps every row; downgrading removes them again.
    app = create_app(TestConfig(empty_database))
    now = datetime(2026, 1, 2, 3, 4, 5)
    with app.app_context():
        upgrade(revision="0001_miaubloom_base")
        with db.engine.begin() as conn:
            ids = _legacy_rows(conn, now)
        upgrade(revision="0002_chat_columns")
        upgrade(revision="0005_notifications")
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"chat_notificaciones", "chat_preferencias"} <= tables
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM Mensajes")).scalar() == 5
            assert conn.execute(sa.text("SELECT COUNT(*) FROM chat_notificaciones")).scalar() == 0
            conn.execute(
                sa.text("INSERT INTO chat_preferencias (usuario_id, updated_at) VALUES (:u, :t)"),
                {"u": ids["pac"], "t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO chat_notificaciones (conversacion_id, usuario_id) VALUES (:c, :u)"
                ),
                {"c": ids["c1"], "u": ids["psi"]},
            )
            # The defaults the migration gives: notified by default, nothing covered or in flight.
            assert conn.execute(sa.text("SELECT notificar_correo FROM chat_preferencias")).scalar()
            row = conn.execute(
                sa.text("SELECT cubierto_seq, fallos, estado FROM chat_notificaciones")
            ).one()
            assert tuple(row) == (0, 0, None)
        from flask_migrate import downgrade

        downgrade(revision="0002_chat_columns")
        tables = set(sa.inspect(db.engine).get_table_names())
        assert not {"chat_notificaciones", "chat_preferencias"} & tables
        assert "Mensajes" in tables
        db.engine.dispose()
