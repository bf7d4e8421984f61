"""One batch into the warehouse: COPY into staging tables, then INSERT ... ON CONFLICT.

COPY (binary) is the fastest way into PostgreSQL but has no ON CONFLICT, so each target table has a
session-local staging table (``CREATE TEMP TABLE ... (LIKE target) ON COMMIT DELETE ROWS``,
rebuilt when the target's columns change). The batch is copied into the staging tables and
moved with ``INSERT INTO target SELECT ... FROM stage ON CONFLICT (message_id) DO NOTHING``,
all in one transaction: a batch lands completely or not at all, and a replayed event (same
messageId) adds no row.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import psycopg
from psycopg import sql

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
        self.stages: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
        self._next_stage = 0

    def forget(self) -> None:
        self.stages.clear()
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
        prepared: list[tuple[str, str, list[str], list[str], list[tuple[Any, ...]]]] = []
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
            assert columns is not None
            stage = await self._stage(conn, table, columns)
            prepared.append((table, stage, *found))
        inserted = 0
        async with conn.transaction():
            for table, stage, names, types, values in prepared:
                idents = sql.SQL(", ").join(sql.Identifier(n) for n in names)
                async with conn.cursor() as cur:
                    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier(stage), idents
                    )
                    async with cur.copy(copy_sql) as copy:
                        copy.set_types(types)
                        for value in values:
                            await copy.write_row(value)
                    await cur.execute(
                        sql.SQL(
                            "INSERT INTO {} ({}) SELECT {} FROM {} "
                            "ON CONFLICT (message_id) DO NOTHING"
                        ).format(self.catalog.ident(table), idents, idents, sql.Identifier(stage))
                    )
                    inserted += max(cur.rowcount, 0)
        return inserted

    async def _stage(self, conn: psycopg.AsyncConnection[Any], table: str, columns: Columns) -> str:
        signature = tuple(sorted(columns.items()))
        known = self.stages.get(table)
        if known is not None and known[1] == signature:
            return known[0]
        name = known[0] if known is not None else f"hw_stage_{self._next_stage}"
        if known is None:
            self._next_stage += 1
        async with conn.transaction():
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            await conn.execute(
                sql.SQL(
                    "CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                ).format(sql.Identifier(name), self.catalog.ident(table))
            )
        self.stages[table] = (name, signature)
        return name


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
