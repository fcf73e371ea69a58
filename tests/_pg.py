"""PostgreSQL for the tests: a private schema on the server named by RUNFLOW_TEST_PG_URL."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("RUNFLOW_TEST_PG_URL")
NO_PG = "set RUNFLOW_TEST_PG_URL=postgresql://... to run against PostgreSQL (scripts/start_postgres.sh starts one)"


@contextlib.contextmanager
def pg_schema_url(prefix: str = "rf_test", *, timezone: str | None = None) -> Iterator[str]:
    """A store URL confined to a fresh schema, dropped afterwards; skips when there is no server.

    ``timezone`` sets the session's time zone (tests of UTC round trips use a non-UTC one on purpose).
    """
    if not PG_URL:
        pytest.skip(NO_PG)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sa.make_url(PG_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    options = f"-csearch_path={schema}" + (f" -ctimezone={timezone}" if timezone else "")
    try:
        yield sa.make_url(PG_URL).update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
