"""A PostgreSQL transaction sent in one round trip: BEGIN, its statements and COMMIT queued in
psycopg's pipeline mode and synced once (again wherever the caller reads an answer on the
way, before the COMMIT is queued).

BEGIN and COMMIT are sent by hand: psycopg's `transaction()` in pipeline mode syncs at its
start and at its end, two more round trips. A statement that fails makes the server skip the
rest of the pipeline, COMMIT included; the transaction is then rolled back here and the error
raised, with nothing committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from psycopg import Connection, Cursor
from psycopg.pq import TransactionStatus


@contextlib.contextmanager
def one_trip(conn: Connection[object]) -> Iterator[Cursor[object]]:
    """A cursor whose statements run in one transaction, sent with it in one round trip."""
    try:
        with conn.pipeline():
            # On the connection: the cursor keeps its last statement's status and results.
            conn.execute("BEGIN")
            yield conn.cursor()
            conn.execute("COMMIT")
    except BaseException:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
        raise
