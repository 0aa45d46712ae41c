from datetime import UTC, datetime

from sqlalchemy import inspect

from aibrain.auth.db import create_database_engine, from_iso, to_iso
from aibrain.auth.migrations import MIGRATIONS, migrate


def test_to_iso_has_milliseconds_and_z():
    assert to_iso(datetime(2026, 12, 4, 19, 9, 50, 811_999, tzinfo=UTC)) == "2026-12-04T19:09:50.811Z"


def test_from_iso_reads_z_and_offsets():
    assert from_iso("2026-12-04T19:09:50.811Z") == from_iso("2026-12-04T20:09:50.811+01:00")


def test_migrate_creates_better_auth_tables(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(engine)
    names = set(inspect(engine).get_table_names())
    assert {"user", "session", "account", "verification", "jwks"} <= names


def test_migrate_twice_applies_nothing_the_second_time(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    assert migrate(engine) == [name for name, _ in MIGRATIONS]
    assert migrate(engine) == []


def test_database_uses_wal(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
