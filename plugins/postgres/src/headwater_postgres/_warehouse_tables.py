"""The warehouse's tables: what columns they have, and the DDL that makes a batch fit.

The column types of each table are cached; a batch that fits the cache costs no catalog
query. When a batch brings a new table, a new key or a value that needs a wider type, the
change is made in its own transaction under an advisory lock on the table, after re-reading
the catalog inside the lock: two loaders (two lanes, two daemons) adding the same column at
once do not trip over each other, and each ends up with the catalog's truth.

PostgreSQL allows 1,600 columns per table. When a table is full, keys that have no column yet
go to ``_conflicts`` instead of failing the load. New columns are added in the order their
keys first appear in the batch (fixed and context columns before properties), so when only
some fit, those are the ones kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import errors, sql

from . import _column_types as t
from ._warehouse_rows import Row, fixed_columns

Columns = dict[str, str]


class TablePlan:
    """What a table needs for one batch: new columns (with types) and widened ones."""

    def __init__(self) -> None:
        self.create = False
        self.add: Columns = {}
        self.widen: Columns = {}

    def __bool__(self) -> bool:
        return self.create or bool(self.add) or bool(self.widen)


def plan(existing: Columns | None, rows: Iterable[Row], *, full: bool) -> TablePlan:
    """The changes that let ``rows`` fit a table with columns ``existing`` (None: missing)."""
    result = TablePlan()
    columns = existing or {}
    result.create = existing is None
    for row in rows:
        for name, value in row.items():
            if value is None:
                continue
            current = columns.get(name)
            if current is None:
                if full:
                    continue
                incoming = t.infer(value)
                if incoming is None:
                    continue
                seen = result.add.get(name)
                result.add[name] = incoming if seen is None else t.join(seen, incoming)
                continue
            wider = t.needs_widening(result.widen.get(name, current), value)
            if wider is not None:
                result.widen[name] = wider
    return result


class TableCatalog:
    """Column types of the destination's tables, kept in step with the database."""

    def __init__(self, schema: str, *, flatten: bool) -> None:
        self.schema = schema
        self.flatten = flatten
        self.columns: dict[str, Columns] = {}
        self.full: set[str] = set()
        self.schema_ready = False

    def forget(self) -> None:
        """Drop every cached fact (after a reconnect or an unexpected error)."""
        self.columns.clear()
        self.full.clear()
        self.schema_ready = False

    def ident(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    async def fit(
        self, conn: psycopg.AsyncConnection[Any], table: str, kind: str, rows: list[Row]
    ) -> Columns:
        """Make ``table`` able to hold ``rows``; return its column types."""
        async with conn.transaction():
            await self._ensure_schema(conn)
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{self.schema}.{table}"]
            )
            current = await self._read_columns(conn, table)
            todo = plan(current, rows, full=table in self.full)
            if todo:
                await self._apply(conn, table, kind, todo)
                current = await self._read_columns(conn, table)
        assert current is not None
        self.columns[table] = current
        return current

    async def _apply(
        self, conn: psycopg.AsyncConnection[Any], table: str, kind: str, todo: TablePlan
    ) -> None:
        if todo.create:
            await conn.execute(create_table_sql(self.ident(table), kind, flatten=self.flatten))
        if todo.widen:
            await conn.execute(
                sql.SQL("ALTER TABLE {} {}").format(
                    self.ident(table),
                    sql.SQL(", ").join(
                        sql.SQL("ALTER COLUMN {c} TYPE {t} USING {c}::{t}").format(
                            c=sql.Identifier(name), t=sql.SQL(kind_type)
                        )
                        for name, kind_type in sorted(todo.widen.items())
                    ),
                )
            )
        if todo.add:
            await self._add_columns(conn, table, list(todo.add.items()))

    async def _add_columns(
        self, conn: psycopg.AsyncConnection[Any], table: str, columns: list[tuple[str, str]]
    ) -> None:
        """Add ``columns`` (in the order keys first appeared); past the column limit, add as
        many as fit (halving the group that failed) and mark the table full."""
        statement = sql.SQL("ALTER TABLE {} {}").format(
            self.ident(table),
            sql.SQL(", ").join(
                sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
                    sql.Identifier(name), sql.SQL(col_type)
                )
                for name, col_type in columns
            ),
        )
        try:
            async with conn.transaction():
                await conn.execute(statement)
        except errors.TooManyColumns:
            self.full.add(table)
            if len(columns) > 1:
                middle = len(columns) // 2
                await self._add_columns(conn, table, columns[:middle])
                await self._add_columns(conn, table, columns[middle:])

    async def _ensure_schema(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.schema_ready:
            return
        cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema])
        if await cur.fetchone() is None:
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
        self.schema_ready = True

    async def _read_columns(self, conn: psycopg.AsyncConnection[Any], table: str) -> Columns | None:
        cur = await conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [self.schema, table],
        )
        found = {name: t.from_catalog(data_type) for name, data_type in await cur.fetchall()}
        return found or None


def create_table_sql(ident: sql.Identifier, kind: str, *, flatten: bool) -> sql.Composed:
    definitions: list[sql.Composable] = []
    for name, col_type in fixed_columns(kind, flatten=flatten).items():
        extra = ""
        if name == "message_id":
            extra = " PRIMARY KEY"
        elif name == "loaded_at":
            extra = " NOT NULL DEFAULT now()"
        definitions.append(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(col_type + extra)))
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        ident, sql.SQL(", ").join(definitions)
    )
