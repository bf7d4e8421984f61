"""`postgres-warehouse`: events into tables, idempotent on messageId.

Outcomes: a batch that commits is delivered (replayed events included: they are already
there). A connection found dead when a batch is sent (closed by the server or a proxy while
idle) is replaced at once and the batch tried again. A refused connection, a missing
privilege or any other failure of the database as a whole is ``Retry`` for the batch, with
the reason. An event the database refuses on its own (a value PostgreSQL cannot store) is
found by splitting the batch in halves until it stands alone, and is ``Rejected`` with the
database's message; the rest are delivered.

``send`` may be called from several delivery lanes at once (the router's default is 4).
Events are turned into rows and typed values outside the lock -- CPU work that overlaps
another lane's time in the database; the database work runs under an ``asyncio.Lock`` on
one connection, so DDL and the check-then-COPY of ``_warehouse_load`` never interleave
between two batches. (A batch prepared for columns that changed meanwhile is prepared
again inside.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import set_json_dumps

from headwater_spec import (
    DELIVERED,
    CheckResult,
    ConnectorContext,
    ConnectorSpec,
    Destination,
    Event,
    Outcome,
    Rejected,
    Retry,
)

from ._column_types import json_dumps
from ._config_check import check_config
from ._connection import (
    PostgresError,
    connect,
    is_connection_lost,
    query_error_message,
    settings_from_config,
)
from ._warehouse_load import Batch, Loader, Ready
from ._warehouse_rows import Row, RowBuilder
from ._warehouse_tables import TableCatalog

Prepared = tuple[int, list[tuple[str, str, Row]]]
"""(index in the batch, the event's rows)."""

_ROW_ERRORS = (
    errors.DataError,
    errors.IntegrityError,
    errors.ProgramLimitExceeded,
    errors.InvalidTextRepresentation,
)


class PostgresWarehouse(Destination):
    spec = ConnectorSpec.from_package(__package__, "spec_warehouse.json")

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        check_config(self.spec, self.config, who=self.who)
        self.settings = settings_from_config(
            self.config,
            default_schema="headwater",
            application_name=f"headwater/{context.instance_id}",
        )
        flatten = bool(self.config.get("flatten", True))
        self.rows = RowBuilder(flatten=flatten, track_tables=self.config.get("track_tables", False))
        self.catalog = TableCatalog(self.settings.schema, flatten=flatten)
        self.loader = Loader(self.catalog)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self.rows_inserted = 0

    @property
    def who(self) -> str:
        return f"postgres-warehouse {self.context.instance_id!r}"

    async def check(self) -> CheckResult:
        """Connect, and check the schema exists and can take tables (or can be created)."""
        try:
            conn = await connect(self.settings, who=self.who)
        except PostgresError as exc:
            return CheckResult(ok=False, message=str(exc))
        schema = self.settings.schema
        try:
            cur = await conn.execute(
                "SELECT has_schema_privilege(n.oid, 'CREATE') FROM pg_namespace n "
                "WHERE n.nspname = %s",
                [schema],
            )
            found = await cur.fetchone()
            if found is None:
                cur = await conn.execute(
                    "SELECT has_database_privilege(current_database(), 'CREATE')"
                )
                allowed = await cur.fetchone()
                ok = bool(allowed and allowed[0])
                what = f"schema {schema!r} does not exist and will be created"
                problem = f"schema {schema!r} does not exist and the user may not create it"
            else:
                ok = bool(found[0])
                what = f"schema {schema!r} exists and accepts tables"
                problem = f"the user may not create tables in schema {schema!r}"
        except psycopg.Error as exc:
            return CheckResult(ok=False, message=query_error_message(exc, self.settings, "schema"))
        finally:
            await conn.close()
        if not ok:
            return CheckResult(
                ok=False,
                message=f"{self.who}: {problem}; grant CREATE or set `schema` to one it owns",
            )
        return CheckResult(ok=True, message=f"connected to {self.settings.target}; {what}")

    async def send(self, batch: Sequence[Event]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        prepared: list[Prepared] = []
        for i, event in enumerate(batch):
            try:
                prepared.append((i, self.rows.rows(event)))
            except Exception as exc:
                outcomes[i] = Rejected(reason=f"cannot turn the event into rows: {exc}")
        grouped = _group(prepared)
        ready = self.loader.prepare(grouped)
        async with self._lock:
            for attempt in (1, 2):
                pending = [item for item in prepared if outcomes[item[0]] is None]
                reused = self._conn is not None and not self._conn.closed
                try:
                    conn = await self._connection()
                    if attempt == 1 and len(pending) == len(prepared):
                        await self._load(conn, pending, outcomes, ready, grouped)
                    else:
                        await self._load(conn, pending, outcomes)
                except PostgresError as exc:
                    reason = str(exc)
                except psycopg.Error as exc:
                    lost = is_connection_lost(exc) or (self._conn is not None and self._conn.broken)
                    await self._reset()
                    if lost and reused and attempt == 1:
                        # A connection that sat idle may have been closed by the server or
                        # a proxy; a new one deserves one immediate try.
                        continue
                    reason = self._reason(exc)
                else:
                    break
                outcomes = [o if o is not None else Retry(reason=reason) for o in outcomes]
                break
        return [o if o is not None else DELIVERED for o in outcomes]

    async def _load(
        self,
        conn: psycopg.AsyncConnection[Any],
        items: list[Prepared],
        outcomes: list[Outcome | None],
        ready: Ready | None = None,
        grouped: Batch | None = None,
    ) -> None:
        """Load ``items`` (``grouped``: their rows by table, when already grouped); on a
        row-level error split them until the culprit stands alone."""
        if not items:
            return
        try:
            batch = grouped if grouped is not None else _group(items)
            self.rows_inserted += await self.loader.load(conn, batch, ready)
        except _ROW_ERRORS as exc:
            if len(items) == 1:
                outcomes[items[0][0]] = Rejected(reason=self._reason(exc))
                return
            middle = len(items) // 2
            await self._load(conn, items[:middle], outcomes)
            await self._load(conn, items[middle:], outcomes)
            return
        for index, _ in items:
            outcomes[index] = DELIVERED

    def _reason(self, exc: psycopg.Error) -> str:
        text = exc.diag.message_primary or str(exc)
        detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
        return self.settings.scrub(
            f"{self.who}: {type(exc).__name__} at {self.settings.target}: {text.strip()}{detail}"
        )

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            self.loader.forget()
            conn = await connect(self.settings, who=self.who)
            set_json_dumps(json_dumps, conn)
            self._conn = conn
        return conn

    async def _reset(self) -> None:
        """After an unexpected error: forget cached tables, drop a broken connection."""
        self.loader.forget()
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            self._conn = None
        elif conn is not None:
            try:
                await conn.rollback()
            except psycopg.Error:
                self._conn = None
                await conn.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


def _group(items: list[Prepared]) -> Batch:
    batch: Batch = {}
    for _, rows in items:
        for table, kind, row in rows:
            batch.setdefault(table, (kind, []))[1].append(row)
    return batch
