"""One batch into the warehouse: the rows whose messageId is not stored yet, by COPY.

COPY (binary) is the fastest way into PostgreSQL but has no ON CONFLICT. Each table's part of
the batch (the first row of each messageId) is copied straight into the table, in a
savepoint. When a messageId is there already (a replay, or another daemon writing the same
tables) the primary key fails the COPY, the savepoint is rolled back and the rows go through
a temporary staging table and ``INSERT ... SELECT ... ON CONFLICT (message_id) DO NOTHING``:
a replayed event never adds a row. After such a conflict the table is in "replay" mode: the
next batches first ask which of their messageIds are stored (one ``message_id = ANY(...)``
query on the primary key) and copy only the others, until a batch finds none; so a replayed
range costs a query per batch instead of a failed COPY. (Asking first always was measured:
the query costs the server about as much as the COPY it saves.) Every table of a batch is
written in one transaction: a batch lands completely or not at all.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import psycopg
from psycopg import errors, sql

from . import _column_types as t
from ._warehouse_rows import Row
from ._warehouse_tables import Columns, TableCatalog

Batch = dict[str, tuple[str, list[Row]]]
"""table -> (event type, rows)."""
Prepared = tuple[list[str], list[str], list[tuple[Any, ...]]]
"""(column names, their binary COPY types, rows of values)."""
Ready = dict[str, tuple[Columns, Prepared | None]]
"""table -> (the cached columns it was prepared for, its values or None when DDL is due)."""

_NOT_COPIED = frozenset({"loaded_at", "_conflicts"})


class Loader:
    """Loads batches over one connection; forget() when the connection is replaced."""

    def __init__(self, catalog: TableCatalog) -> None:
        self.catalog = catalog
        self.replaying: set[str] = set()
        """Tables whose last COPY met stored messageIds: the next batch asks first."""

    def forget(self) -> None:
        self.catalog.forget()

    def prepare(self, batch: Batch) -> Ready:
        """The batch's values for the tables as cached now: CPU work that needs no
        connection, so it can run while another batch holds the database (see ``load``)."""
        ready: Ready = {}
        for table, (_, rows) in batch.items():
            columns = self.catalog.columns.get(table)
            if columns is not None:
                ready[table] = (columns, prepare_rows(columns, rows, settled=False))
        return ready

    async def load(
        self, conn: psycopg.AsyncConnection[Any], batch: Batch, ready: Ready | None = None
    ) -> int:
        """Write every row of ``batch``; return how many were new (not replays).

        ``ready`` (from ``prepare``) is used for each table whose cached columns did not
        change since; the others are prepared here, after any DDL they need.
        """
        prepared: list[tuple[str, list[str], list[str], list[tuple[Any, ...]]]] = []
        for table, (kind, rows) in sorted(batch.items()):
            columns = self.catalog.columns.get(table)
            early = (ready or {}).get(table)
            found: Prepared | None
            if early is not None and early[0] is columns:
                found = early[1]
            else:
                found = prepare_rows(columns, rows, settled=False) if columns else None
            if found is None:
                columns = await self.catalog.fit(conn, table, kind, rows)
                found = prepare_rows(columns, rows, settled=True)
                assert found is not None
            prepared.append((table, *found))
        inserted = 0
        async with conn.transaction():
            for table, names, types, values in prepared:
                target = self.catalog.ident(table)
                at = names.index("message_id")
                if table in self.replaying:
                    fresh = await _not_stored(conn, target, at, values)
                    if len(fresh) == len({row[at] for row in values}):  # none was stored
                        self.replaying.discard(table)
                    if not fresh:
                        continue
                else:
                    fresh = _first_of_each(values, at)
                try:
                    async with conn.transaction():  # a savepoint
                        await _copy(conn, target, names, types, fresh)
                    inserted += len(fresh)
                except errors.UniqueViolation:
                    self.replaying.add(table)
                    inserted += await self._merge(conn, target, names, types, fresh)
        return inserted

    async def _merge(
        self,
        conn: psycopg.AsyncConnection[Any],
        target: sql.Identifier,
        names: list[str],
        types: list[str],
        values: list[tuple[Any, ...]],
    ) -> int:
        """The rows not in ``target`` yet, by way of a staging table and ON CONFLICT."""
        stage = sql.Identifier("hw_stage")
        idents = sql.SQL(", ").join(sql.Identifier(n) for n in names)
        await conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                stage, target
            )
        )
        await _copy(conn, stage, names, types, values)
        cur = await conn.execute(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (message_id) DO NOTHING"
            ).format(target, idents, idents, stage)
        )
        await conn.execute(sql.SQL("DROP TABLE {}").format(stage))
        return max(cur.rowcount, 0)


async def _not_stored(
    conn: psycopg.AsyncConnection[Any],
    target: sql.Identifier,
    at: int,
    values: list[tuple[Any, ...]],
) -> list[tuple[Any, ...]]:
    """The rows whose messageId (at index ``at``) is not in ``target``, the first of each."""
    ids = [row[at] for row in values]
    cur = await conn.execute(
        sql.SQL("SELECT message_id FROM {} WHERE message_id = ANY(%s)").format(target), [ids]
    )
    stored = {found for (found,) in await cur.fetchall()}
    return _first_of_each(values, at, stored) if stored else _first_of_each(values, at)


def _first_of_each(
    values: list[tuple[Any, ...]], at: int, skip: set[str] | None = None
) -> list[tuple[Any, ...]]:
    """The first row of each messageId (at index ``at``) not in ``skip``."""
    if skip is None and len({row[at] for row in values}) == len(values):
        return values
    seen = set(skip or ())
    fresh: list[tuple[Any, ...]] = []
    for row in values:
        message_id = row[at]
        if message_id not in seen:
            seen.add(message_id)
            fresh.append(row)
    return fresh


async def _copy(
    conn: psycopg.AsyncConnection[Any],
    table: sql.Identifier,
    names: list[str],
    types: list[str],
    values: list[tuple[Any, ...]],
) -> None:
    idents = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, idents)
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        for value in values:
            await copy.write_row(value)


def prepare_rows(columns: Columns, rows: list[Row], *, settled: bool) -> Prepared | None:
    """Columns to copy (with their COPY types) and each row's values in that order, values
    that do not fit in ``_conflicts``; None when the table needs DDL first (a new column, a
    wider type) and is not ``settled``."""
    present: dict[str, Any] = {}
    for row in rows:
        present.update(row)
    names: list[str] = []
    types: list[str] = []
    stored: list[list[Any]] = []
    conflicts: dict[int, dict[str, Any]] = {}
    for name in present:
        if name in _NOT_COPIED:
            continue
        values = list(map(dict.get, rows, repeat(name)))
        column_type = columns.get(name)
        if column_type is None:
            if not settled and any(v is not None for v in values):
                return None
            column_type = "(none)"
        copy_type = t.COPY_TYPES.get(column_type)
        if copy_type is None:
            for i, v in enumerate(values):
                if v is not None:
                    conflicts.setdefault(i, {})[name] = v
            continue
        converted, clashes, widen = t.convert_column(column_type, values, settled=settled)
        if widen:
            return None
        for i in clashes:
            conflicts.setdefault(i, {})[name] = values[i]
        names.append(name)
        types.append(copy_type)
        stored.append(converted)
    extra: list[Any] = [None] * len(rows)
    for i, found in conflicts.items():
        extra[i] = found
    stored.append(extra)
    return [*names, "_conflicts"], [*types, "jsonb"], list(zip(*stored, strict=True))
