"""Connection settings shared by both connectors, and errors users can act on.

The dsn may carry a password, so it is a secret: it never reaches a log line, an exception
message or a repr. ``target`` is what logs show instead (user@host:port/dbname). A separate
``password`` key exists because a raw password from an environment variable (``${PG_PASSWORD}``)
would otherwise have to be percent-encoded to sit inside a URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import psycopg
from psycopg import conninfo, errors

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class PostgresError(RuntimeError):
    """A problem the operator can fix; the message names the config key and never a secret."""


class ConnectionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What both connectors need to reach the database."""

    dsn: str
    password: str | None = None
    sslmode: str | None = None
    schema: str
    connect_timeout: int = 10
    application_name: str = "headwater"

    def __repr__(self) -> str:
        return f"ConnectionSettings({self.target!r}, schema={self.schema!r})"

    @property
    def target(self) -> str:
        """user@host:port/dbname, safe to log."""
        return describe_dsn(self.dsn)

    def secrets(self) -> list[str]:
        """Strings that must never appear in a message: the dsn and any password."""
        found = [self.dsn]
        if self.password:
            found.append(self.password)
        try:
            embedded = conninfo.conninfo_to_dict(self.dsn).get("password")
        except psycopg.ProgrammingError:
            embedded = None
        if embedded:
            found.append(str(embedded))
        return found

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ***."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


def settings_from_config(
    config: Mapping[str, Any], *, default_schema: str, application_name: str
) -> ConnectionSettings:
    return ConnectionSettings(
        dsn=str(config["dsn"]),
        password=config.get("password"),
        sslmode=config.get("sslmode"),
        schema=str(config.get("schema", default_schema)),
        connect_timeout=int(config.get("connect_timeout", 10)),
        application_name=application_name[:63],
    )


def describe_dsn(dsn: str) -> str:
    """user@host:port/dbname of a dsn, without the password (or "(unparsable dsn)")."""
    try:
        parts = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparsable dsn)"
    user = parts.get("user") or "(default user)"
    host = parts.get("host") or parts.get("hostaddr") or "(local socket)"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or "(default db)"
    return f"{user}@{host}:{port}/{dbname}"


def connect_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "connect_timeout": settings.connect_timeout,
        "application_name": settings.application_name,
        # UTC sessions make timestamptz values (and the messageIds derived from them) the
        # same whatever the server's default time zone is; ISO dates are what the source
        # reads timestamps as text in.
        "options": "-c TimeZone=UTC -c DateStyle=ISO",
    }
    if settings.password is not None:
        kwargs["password"] = settings.password
    if settings.sslmode is not None:
        kwargs["sslmode"] = settings.sslmode
    return kwargs


async def connect(settings: ConnectionSettings, *, who: str) -> psycopg.AsyncConnection[Any]:
    """Open a connection or raise PostgresError saying what is wrong and which key to fix."""
    try:
        conninfo.conninfo_to_dict(settings.dsn)
    except psycopg.ProgrammingError:
        raise PostgresError(
            f"{who}: `dsn` is not a valid PostgreSQL connection string; use a URI like "
            "postgresql://user@host:5432/dbname (the password in `password`)"
        ) from None
    try:
        return await psycopg.AsyncConnection.connect(settings.dsn, **connect_kwargs(settings))
    except psycopg.Error as exc:
        raise PostgresError(connect_error_message(exc, settings, who)) from None


def connect_error_message(exc: psycopg.Error, settings: ConnectionSettings, who: str) -> str:
    """A connection failure as the operator should read it."""
    detail = settings.scrub(str(exc)).strip()
    detail = detail.removeprefix("connection failed: ")
    lower = detail.lower()
    where = f"{who}: cannot connect to {settings.target}"
    if "password authentication failed" in lower or "no password supplied" in lower:
        fix = "check the password (`password`, or the one in `dsn`)"
    elif "role" in lower and "does not exist" in lower:
        fix = "check the user name in `dsn`"
    elif "database" in lower and "does not exist" in lower:
        fix = "check the database name in `dsn`"
    elif "ssl" in lower:
        fix = "check `sslmode` and the server's TLS settings"
    elif "refused" in lower or "timeout" in lower or "could not translate" in lower:
        fix = "check the host and port in `dsn`, and that the server is running"
    else:
        fix = "check `dsn`"
    return f"{where}: {_last_line(detail)}; {fix}"


def query_error_message(exc: psycopg.Error, settings: ConnectionSettings, key: str) -> str:
    """A failed statement as the operator should read it, naming the config key at fault."""
    diag = exc.diag
    text = diag.message_primary or str(exc)
    if isinstance(exc, errors.UndefinedTable):
        fix = f"check `{key}` and `schema` (search path: {settings.schema})"
    elif isinstance(exc, errors.UndefinedColumn):
        fix = f"check the column names in `{key}`"
    elif isinstance(exc, errors.SyntaxError):
        fix = f"check the SQL in `{key}`"
    elif isinstance(exc, errors.InsufficientPrivilege):
        fix = "grant the connecting user the privilege, or connect as another user"
    else:
        fix = f"check `{key}`"
    hint = f" ({diag.message_hint})" if diag.message_hint else ""
    return settings.scrub(f"{_last_line(text)}{hint}; {fix}")


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (not the statement) failed."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not isinstance(
        exc, errors.QueryCanceled
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return text
    main = next((line for line in lines if line.startswith("FATAL")), lines[0])
    return main.removeprefix("FATAL:").strip()
