"""The incremental read, as SQL.

The rule that keeps a read gap-free and duplicate-free: rows are totally ordered by
``(cursor, key...)`` and a pass reads every row strictly after the last one checkpointed::

    WHERE (cursor, key) > (:last_cursor, :last_key) ORDER BY cursor, key

Ordering on the cursor alone would skip rows that share the last cursor value (many rows are
updated in the same second) when a fetch ends among them; the key breaks the tie. The row
comparison is spelled out as ``cursor >= :c AND (cursor > :c OR (cursor = :c AND key > :k))``
because Amazon Redshift lacks row-value comparisons; the leading ``cursor >= :c`` still lets
PostgreSQL start an index range scan on (cursor, key).

Checkpointed values are bound as text parameters (PostgreSQL infers their type from the
column they are compared with), so any orderable column type works as cursor or key.
"""

from __future__ import annotations

from psycopg import sql

from ._source_config import SourceConfig

ALIAS = "hw_src"


def base_query(config: SourceConfig) -> sql.Composable:
    """The rows to read, before filtering and ordering."""
    if config.query is not None:
        text = config.query.strip().rstrip(";").strip()
        # psycopg reads every % as a placeholder; the user's query has none of ours.
        return sql.SQL(text.replace("%", "%%"))
    assert config.table is not None
    table = table_identifier(config.table)
    if not config.columns:
        return sql.SQL("SELECT * FROM {}").format(table)
    columns = list(config.columns)
    for column in config.mapped_columns():
        if column not in columns:
            columns.append(column)
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), table
    )


def table_identifier(name: str) -> sql.Identifier:
    """``name`` or ``schema.name``; an unqualified name follows the search path."""
    parts = name.split(".")
    if len(parts) == 2 and all(parts):
        return sql.Identifier(*parts)
    return sql.Identifier(name)


def _col(name: str) -> sql.Composable:
    return sql.Identifier(ALIAS, name)


def incremental_query(config: SourceConfig, *, resume: bool) -> sql.Composed:
    """The pass query; with ``resume`` it takes %(c)s and %(k0)s... for the last row read."""
    order = [config.cursor_column, *config.tie_breakers]
    parts: list[sql.Composable] = [
        sql.SQL("SELECT * FROM ({}) AS {}").format(base_query(config), sql.Identifier(ALIAS))
    ]
    if resume:
        parts.append(sql.SQL("WHERE {}").format(after_condition(config)))
    parts.append(sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(_col(c) for c in order)))
    return sql.SQL(" ").join(parts)


def after_condition(config: SourceConfig) -> sql.Composable:
    """(cursor, keys...) > (%(c)s, %(k0)s, ...), spelled without row-value syntax."""
    cursor = _col(config.cursor_column)
    keys = config.tie_breakers
    if not keys:
        return sql.SQL("{} > %(c)s").format(cursor)
    tie = _lexicographic_after([_col(k) for k in keys], [f"k{i}" for i in range(len(keys))])
    return sql.SQL("{c} >= %(c)s AND ({c} > %(c)s OR ({c} = %(c)s AND {tie}))").format(
        c=cursor, tie=tie
    )


def _lexicographic_after(columns: list[sql.Composable], params: list[str]) -> sql.Composable:
    head, param = columns[0], sql.Placeholder(params[0])
    greater = sql.SQL("{} > {}").format(head, param)
    if len(columns) == 1:
        return greater
    rest = _lexicographic_after(columns[1:], params[1:])
    return sql.SQL("({} OR ({} = {} AND {}))").format(greater, head, param, rest)


def probe_query(config: SourceConfig) -> sql.Composed:
    """The query with no rows, to learn its columns (and that it parses) cheaply."""
    return sql.SQL("SELECT * FROM ({}) AS {} LIMIT 0").format(
        base_query(config), sql.Identifier(ALIAS)
    )
