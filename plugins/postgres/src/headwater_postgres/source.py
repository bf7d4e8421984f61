"""`postgres-source`: rows of a query or table, polled incrementally, become events.

Each pass opens a read-only transaction, declares a server-side cursor (so memory stays flat
however many rows match) over the incremental query of ``_source_sql`` and fetches
``fetch_size`` rows at a time. Each chunk's events are appended to the log together with the
checkpoint of its last row in one durable step (``emit_and_checkpoint``), so after a crash
the next pass starts exactly after the last row whose events are in the log: no gap, no
duplicate. Chunks are stored strictly one after another, but while one is mapped to events
the next is being fetched and the one before is being committed, so the server, the log's
disk and this process work at once (at most two chunks of rows are held). Between passes the
source sleeps ``poll_interval`` seconds.

Known limit, as with every cursor-based reverse ETL (Airbyte, Census, Hightouch): a row
committed late with a cursor value lower than one already read (a long transaction that set
``updated_at = now()`` at its start) is not seen. Set the cursor from ``clock_timestamp()`` in
a trigger, or use an id from a sequence on append-only tables, to narrow that window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.types.string import TextLoader

from headwater_spec import (
    CheckResult,
    ConnectorContext,
    ConnectorSpec,
    Event,
    Source,
    SourceContext,
)

from ._checkpoint import Checkpoint, decode_checkpoint, encode_checkpoint
from ._config_check import check_config
from ._connection import (
    PostgresError,
    connect,
    is_connection_lost,
    query_error_message,
    settings_from_config,
)
from ._row_events import RowMapper
from ._source_config import source_config
from ._source_sql import base_query, incremental_query, probe_query
from ._values import NOT_TEXT_LOADABLE, TEXT_LOADED

CURSOR_NAME = "headwater_source"


class PostgresSource(Source):
    spec = ConnectorSpec.from_package(__package__, "spec_source.json")

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        check_config(self.spec, self.config, who=self.who)
        self.settings = settings_from_config(
            self.config,
            default_schema="public",
            application_name=f"headwater/{context.instance_id}",
        )
        self.options = source_config(self.config)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.rows_read = 0
        self.events_emitted = 0

    @property
    def who(self) -> str:
        return f"postgres-source {self.context.instance_id!r}"

    async def check(self) -> CheckResult:
        """Connect, run the query with LIMIT 0 and check every mapped column is there."""
        try:
            conn = await connect(self.settings, who=self.who)
        except PostgresError as exc:
            return CheckResult(ok=False, message=str(exc))
        try:
            await self._prepare(conn)
            columns, _ = await self._columns(conn)
        except PostgresError as exc:
            return CheckResult(ok=False, message=str(exc))
        except psycopg.Error as exc:
            return CheckResult(ok=False, message=self._failure(exc, conn))
        finally:
            await conn.close()
        what = self.options.query_key
        return CheckResult(
            ok=True,
            message=f"connected to {self.settings.target}; the {what} returns {len(columns)} "
            f"columns ({', '.join(columns)})",
        )

    async def run(self, ctx: SourceContext) -> None:
        checkpoint = decode_checkpoint(await ctx.load_checkpoint(), self.options, who=self.who)
        try:
            while True:
                checkpoint = await self.read_pass(ctx, checkpoint)
                await asyncio.sleep(self.options.poll_interval)
        finally:
            await self.close()

    async def read_pass(
        self, ctx: SourceContext, checkpoint: Checkpoint | None
    ) -> Checkpoint | None:
        """Read every row after ``checkpoint``; return the checkpoint of the last one.

        Each pass first runs the query with LIMIT 0 to check the mapped columns are there,
        so a column renamed since the last pass is reported by its config key.
        """
        conn = await self._connection()
        try:
            _, types = await self._columns(conn)
            return await self._read(conn, ctx, checkpoint, types)
        except PostgresError:
            await self.close()
            raise
        except psycopg.Error as exc:
            message = self._failure(exc, conn)
            await self.close()
            raise PostgresError(message) from None

    def _failure(self, exc: psycopg.Error, conn: psycopg.AsyncConnection[Any]) -> str:
        if is_connection_lost(exc) or conn.broken:
            return (
                f"{self.who}: lost the connection to {self.settings.target}: "
                f"{self.settings.scrub(str(exc)).strip()}"
            )
        key = self.options.query_key
        return f"{self.who}: the {key} failed: {query_error_message(exc, self.settings, key)}"

    async def _read(
        self,
        conn: psycopg.AsyncConnection[Any],
        ctx: SourceContext,
        checkpoint: Checkpoint | None,
        types: list[int],
    ) -> Checkpoint | None:
        """One pass; ``types`` (the probe's column types) say whether the ``TEXT_LOADED``
        types can be read as text (see ``_values``): not when an array or a range of them
        would then come as text too."""
        opts = self.options
        query = incremental_query(opts, resume=checkpoint is not None)
        params = checkpoint.params() if checkpoint is not None else {}
        as_text = NOT_TEXT_LOADABLE.isdisjoint(types)
        rows_read = emitted = 0
        async with conn.transaction(), conn.cursor(name=CURSOR_NAME) as cur:
            if as_text:
                for type_name in TEXT_LOADED:
                    cur.adapters.register_loader(type_name, TextLoader)
            await cur.execute(query, params)
            assert cur.description is not None
            columns = [d.name for d in cur.description]
            found = [d.type_code for d in cur.description]
            if as_text and not NOT_TEXT_LOADABLE.isdisjoint(found):
                raise PostgresError(
                    f"{self.who}: the column types of the {opts.query_key} changed during the "
                    "pass; it is read again on the next one"
                )
            mapper = RowMapper(
                opts,
                columns,
                instance_id=self.context.instance_id,
                types=found,
                as_text=as_text,
            )
            # While one chunk is mapped, the next is fetched and the one before is committed
            # to the log: the server, the log's disk and this process work at once. Chunks
            # are still stored one after another, each with its checkpoint.
            fetching: asyncio.Future[list[Any]] | None = None
            storing: asyncio.Future[None] | None = None
            try:
                rows = await cur.fetchmany(opts.fetch_size)
                while rows:
                    fetching = asyncio.ensure_future(cur.fetchmany(opts.fetch_size))
                    await asyncio.sleep(0)  # lets it send the FETCH
                    events = mapper.events(rows)
                    cursor, keys = mapper.position(rows[-1])
                    checkpoint = Checkpoint(
                        cursor_column=opts.cursor_column,
                        key_columns=opts.tie_breakers,
                        cursor=cursor,
                        keys=keys,
                    )
                    rows_read += len(rows)
                    emitted += len(events)
                    if storing is not None:
                        await storing
                    storing = asyncio.ensure_future(
                        _store(ctx, events, encode_checkpoint(checkpoint))
                    )
                    del events  # the log encodes them and lets them go
                    rows = await fetching
                    fetching = None
                if storing is not None:
                    await storing
            finally:
                await _settle(fetching, storing)
        self.rows_read += rows_read
        self.events_emitted += emitted
        if mapper.skipped:
            ctx.logger.warning(
                "postgres-source skipped rows without a user id, anonymous id or event name",
                extra={"fields": {"skipped": mapper.skipped, "first_key": mapper.first_skipped}},
            )
        if rows_read:
            ctx.logger.info(
                "postgres-source pass done",
                extra={"fields": {"rows": rows_read, "events": emitted}},
            )
        return checkpoint

    async def _columns(self, conn: psycopg.AsyncConnection[Any]) -> tuple[list[str], list[int]]:
        """The query's columns and their type OIDs (from a LIMIT 0 run), checked against the
        mapping.

        PostgresError names the config key at fault; a lost connection is left to the caller.
        """
        try:
            cur = await conn.execute(probe_query(self.options), {})
            assert cur.description is not None
            columns = [d.name for d in cur.description]
            types = [d.type_code for d in cur.description]
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            await conn.rollback()
            if isinstance(exc, errors.SyntaxError) and self.options.query is not None:
                exc = await self._unwrapped_error(conn) or exc
            raise PostgresError(self._failure(exc, conn)) from None
        await conn.rollback()
        try:
            RowMapper(self.options, columns, instance_id=self.context.instance_id)
        except PostgresError as exc:
            raise PostgresError(f"{self.who}: {exc}") from None
        return columns, types

    async def _unwrapped_error(self, conn: psycopg.AsyncConnection[Any]) -> psycopg.Error | None:
        """The syntax error of the query as the user wrote it (not wrapped in a subquery, which
        moves the point PostgreSQL reports), found by preparing it alone."""
        try:
            await conn.execute(
                sql.SQL("PREPARE hw_probe AS {}").format(base_query(self.options)), {}
            )
            await conn.execute("DEALLOCATE hw_probe")
        except psycopg.Error as exc:
            return exc
        finally:
            await conn.rollback()
        return None

    async def _prepare(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Read-only sessions (a query cannot change the data), searching ``schema``."""
        await conn.set_read_only(True)
        await conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(self.settings.schema))
        )
        await conn.commit()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            conn = await connect(self.settings, who=self.who)
            try:
                await self._prepare(conn)
            except psycopg.Error as exc:
                await conn.close()
                raise PostgresError(
                    f"{self.who}: cannot use schema {self.settings.schema!r}: "
                    + query_error_message(exc, self.settings, "schema")
                ) from None
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()


async def _store(ctx: SourceContext, events: list[Event], checkpoint: bytes) -> None:
    if events:
        await ctx.emit_and_checkpoint(events, checkpoint)
    else:
        await ctx.save_checkpoint(checkpoint)


async def _settle(
    fetching: asyncio.Future[list[Any]] | None, storing: asyncio.Future[None] | None
) -> None:
    """After a failed or cancelled pass: stop a fetch in flight (psycopg cancels it on the
    server) and let a chunk being committed finish, so the log holds whole chunks with their
    checkpoint; their errors are the pass's, already raised."""
    if fetching is not None and not fetching.done():
        fetching.cancel()
    tasks = [task for task in (fetching, storing) if task is not None]
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning
