"""PostgreSQL connectors for Headwater: reverse ETL in, warehouse out.

One distribution registers both: ``postgres-source`` (rows of a query become identify or
track events) and ``postgres-warehouse`` (events land in one table per event type).
"""

from __future__ import annotations

from headwater_spec import Register, hookimpl

from .source import PostgresSource
from .warehouse import PostgresWarehouse

__all__ = ["PostgresSource", "PostgresWarehouse", "register_connectors"]


@hookimpl
def register_connectors(register: Register) -> None:
    register(PostgresSource)
    register(PostgresWarehouse)
