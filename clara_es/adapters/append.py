"""eventsourcing's PostgreSQL application recorder, its append sent in one round trip.

eventsourcing 9.5 appends in pipeline mode inside psycopg's `transaction()`, which syncs at
its start, at its end and after the commit: with its own sync after the insert, four round
trips per append, the events table locked across three of them. Here BEGIN, the table lock,
the NOTIFY, the insert and the COMMIT go in one pipeline and one sync. The statements and
their order are eventsourcing's own (the lock that makes commit order the log's order, the
NOTIFY delivered at commit); a conflict (a stream position taken) fails the insert, the
server skips the COMMIT, and the transaction is rolled back: the same IntegrityError as
before, raised before anything is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry

from clara_es.adapters.pipeline import one_trip


class OneTripRecorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events or self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.get_connection() as conn:
            with one_trip(conn) as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
            # Before the connection goes back to the pool: the ids are read from this cursor.
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
