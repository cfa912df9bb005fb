"""What does one send cost the server, in-process and without sockets?

Builds the app on a fresh MariaDB database (migrated), sets up a pair, then
makes --sends lone sends through service.send_message (each a batch of one: its
statements and a COMMIT) and reports per send: wall time, this process's CPU,
and mysqld's CPU (from /proc, when mysqld runs on this host; on a shared
server that counts other clients too), and how the time spent inside the
driver splits between the statements. The socket and
JSON work of a real send are left out, so a change to the send's statements
shows up undiluted. Compare two checkouts by running the same script with
PYTHONPATH pointing at each:

    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/send_path.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import MARIADB_ADMIN, SECRET


def _mysqld_ticks() -> int | None:
    """mysqld's user+system CPU ticks, or None if it is not a process of this host."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name in ("mariadbd", "mysqld"):
            fields = stat[stat.rindex(")") + 2 :].split()
            return int(fields[11]) + int(fields[12])
    return None


class StatementClock:
    """Wall and CPU time spent executing each kind of statement (verb and table)."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = {}
        self._started: tuple[float, float] = (0.0, 0.0)

    def before(self, _conn, _cursor, statement, *_) -> None:  # type: ignore[no-untyped-def]
        self._started = (time.perf_counter(), time.thread_time())

    def after(self, _conn, _cursor, statement, *_) -> None:  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter() - self._started[0], time.thread_time() - self._started[1]
        words = statement.replace("`", "").split()
        verb = words[0].upper()
        if verb == "INSERT":  # INSERT INTO t
            table = words[2]
        elif verb == "SELECT":  # SELECT ... FROM t
            table = words[words.index("FROM") + 1] if "FROM" in words else ""
        else:  # UPDATE t, DELETE FROM t
            table = words[1] if verb == "UPDATE" else words[2]
        entry = self.spent.setdefault(f"{verb} {table}", [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu

    def per_send(self, sends: int) -> dict:
        """Per send: how many of each statement, and their wall and CPU milliseconds."""
        return {
            kind: {"count": round(n / sends, 2), "wall_ms": round(1000 * w / sends, 3),
                   "cpu_ms": round(1000 * c / sends, 3)}
            for kind, (n, w, c) in sorted(self.spent.items())
        }  # fmt: skip


def run(sends: int) -> dict:
    """Migrate a fresh database, send, measure; the database is dropped after."""
    os.environ.setdefault("JWT_SECRET", SECRET)
    from flask_migrate import upgrade

    from config import TestConfig
    from miaubloom import create_app
    from miaubloom.accounts import assign_patient, register
    from miaubloom.auth import authenticate, issue_token
    from miaubloom.chat import service
    from miaubloom.extensions import db

    name = f"miaubloom_sendpath_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(MARIADB_ADMIN)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        app = create_app(TestConfig(MARIADB_ADMIN.rstrip("/") + f"/{name}?charset=utf8mb4"))
        with app.app_context():
            upgrade()
            psi = register("psi@bench.miaubloom", "contraseña-larga", "Psi", "Psicólogo")
            pac = register("pac@bench.miaubloom", "contraseña-larga", "Pac", "Paciente")
            psi_id, pac_id = psi.id, pac.id

            def caller_of(user):  # type: ignore[no-untyped-def]
                return authenticate(
                    issue_token(user.id, user.rol, user.email, user.nombre_completo)
                )

            assign_patient(caller_of(psi), pac_id)
            caller = caller_of(db.session.get(type(pac), pac_id))
            conv = service.open_conversation(caller, psi_id)
            for n in range(50):  # warm up the pool and the caches
                service.send_message(caller, conv.id, f"calentando {n}", None)
                db.session.remove()
            clock = StatementClock()
            sa.event.listen(db.engine, "before_cursor_execute", clock.before)
            sa.event.listen(db.engine, "after_cursor_execute", clock.after)
            ticks, cpu, wall = _mysqld_ticks(), time.process_time(), time.perf_counter()
            for n in range(sends):
                service.send_message(caller, conv.id, f"Hoy dormí mejor, gracias ({n})", f"c{n}")
                db.session.remove()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            after = _mysqld_ticks()
            sa.event.remove(db.engine, "before_cursor_execute", clock.before)
            sa.event.remove(db.engine, "after_cursor_execute", clock.after)
            db.engine.dispose()
        hz = os.sysconf("SC_CLK_TCK")
        out = {
            "sends": sends,
            "wall_ms_per_send": round(1000 * wall / sends, 3),
            "python_cpu_ms_per_send": round(1000 * cpu / sends, 3),
            "statements": clock.per_send(sends),
        }
        if ticks is not None and after is not None:
            out["mysqld_cpu_ms_per_send"] = round(1000 * (after - ticks) / hz / sends, 3)
        return out
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def main() -> int:
    """Run once and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sends", type=int, default=2000)
    a = ap.parse_args()
    print(json.dumps(run(a.sends)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
