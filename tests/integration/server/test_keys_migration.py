"""Migration ``0011_keys_userdata`` on SQLite and PostgreSQL: it builds exactly the models, goes
down to ``0010_networks`` and up again, and the database enforces its constraints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud.server.db import migrate
from hvcloud.server.db.models import Account, Base, Domain, SSHKeyPair, UserData
from tests.support.migrations import BACKENDS, alembic, empty_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with empty_engine(request.param, tmp_path) as eng:
        yield eng


def test_keys_migration_down_and_up(engine: Engine) -> None:
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

    alembic(engine, "downgrade", "0010_networks")
    tables = set(inspect(engine).get_table_names())
    assert not tables & {"ssh_keypair", "user_data"}
    assert not {c["name"] for c in inspect(engine).get_columns("vm_instance")} & {"keypairs", "password_enc"}

    alembic(engine, "upgrade", "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

    with Session(engine) as db:
        domain = Domain(name="ROOT", path="ROOT")
        db.add(domain)
        db.flush()
        account = Account(name="a", domain_id=domain.id, account_type=0)
        db.add(account)
        db.flush()
        db.add_all([SSHKeyPair(name="k", account_id=account.id, domain_id=domain.id, public_key="ssh-ed25519 AAAA",
                               fingerprint="00:11"),
                    UserData(name="u", account_id=account.id, domain_id=domain.id, user_data="aGk=")])
        db.commit()
        assert db.scalar(select(SSHKeyPair.fingerprint).where(SSHKeyPair.name == "k")) == "00:11"
        for duplicate in (SSHKeyPair(name="k", account_id=account.id, domain_id=domain.id, public_key="x",
                                     fingerprint="x"),
                          UserData(name="u", account_id=account.id, domain_id=domain.id, user_data="eA==")):
            db.add(duplicate)
            with pytest.raises(IntegrityError):
                db.flush()
            db.rollback()
