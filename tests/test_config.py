"""Configuration: the secret is required in production; the embedded database is made on start."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.live import ROOT


def _boot(env: dict[str, str], code: str = "import wsgi") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "MIAUBLOOM_ENV")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret(tmp_path):
    result = _boot({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert result.returncode != 0
    assert "JWT_SECRET is not set" in result.stderr


def test_development_starts_without_a_secret_on_the_embedded_database(tmp_path):
    code = (
        "import wsgi; from miaubloom.extensions import db; import sqlalchemy as sa;"
        "print(wsgi.app.instance_path);"
        "ctx = wsgi.app.app_context(); ctx.push();"
        "print(sorted(sa.inspect(db.engine).get_table_names()))"
    )
    # The real default: instance/miaubloom.sqlite3, created (or upgraded) on start.
    result = _boot({"MIAUBLOOM_ENV": "development", "DATABASE_URL": ""}, code)
    assert result.returncode == 0, result.stderr
    instance, tables = result.stdout.strip().splitlines()
    assert os.path.exists(os.path.join(instance, "miaubloom.sqlite3"))
    assert "Mensajes" in tables and "alembic_version" in tables


def test_production_cookie_is_secure(people, app):
    app.config["ENV_NAME"] = "production"
    client = app.test_client()
    pac = people.register()
    r = client.post("/api/auth/login", json={"email": pac.email, "password": "contraseña-segura"})
    assert "Secure" in r.headers["Set-Cookie"]


def test_edit_window_and_retention_settings(monkeypatch):
    import pytest

    from config import Config

    for name in ("EDIT_WINDOW_SECONDS", "DELETED_RETENTION"):
        monkeypatch.delenv(name, raising=False)
    assert (Config().EDIT_WINDOW_SECONDS, Config().DELETED_RETENTION) == (86_400, "off")
    monkeypatch.setenv("EDIT_WINDOW_SECONDS", "600")
    monkeypatch.setenv("DELETED_RETENTION", " Keep ")
    assert (Config().EDIT_WINDOW_SECONDS, Config().DELETED_RETENTION) == (600, "keep")
    monkeypatch.setenv("DELETED_RETENTION", "yes")  # a typo must not silently keep (or drop) text
    with pytest.raises(RuntimeError, match="DELETED_RETENTION"):
        Config()
