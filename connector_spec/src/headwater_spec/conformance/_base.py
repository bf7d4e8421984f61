"""What the destination and source suites share: the spec checks, setup and reporting."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import jsonschema
import pytest

from .._connector import Connector
from .._spec import ConnectorSpec
from ._context import MemoryContext
from ._leaks import Secret, leaks, secrets_in
from ._server import ServiceServer
from ._spec_checks import (
    connector_label,
    direction_problems,
    example_problems,
    load_spec,
    region_problems,
    secret_problems,
    version_problems,
)
from ._version import SUITE_VERSION

T = TypeVar("T")


def report(cls: type[Connector], problems: Sequence[str]) -> None:
    """Fail the test with every problem as a bullet, without a traceback to wade through."""
    if problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        pytest.fail(f"{connector_label(cls)} does not conform:\n{lines}", pytrace=False)


def fail(cls: type[Connector], problem: str) -> NoReturn:
    report(cls, [problem])
    raise AssertionError(problem)  # unreachable: report() fails the test


class ConnectorConformance:
    """The checks every connector passes; subclass ``DestinationConformance`` or
    ``SourceConformance`` and set ``connector``.

    Attributes an author may set: ``region`` (default: the spec's default region),
    ``not_secret`` (config keys named like secrets that are not), ``timeout`` (seconds any
    one step may take before the suite calls it hung).
    """

    AUTHOR_METHODS: ClassVar[tuple[str, ...]] = ("config",)
    """The methods an author overrides (the attributes are the ClassVars); documented in
    docs/connectors.md, which a test keeps complete."""

    connector: ClassVar[type[Connector]]
    region: ClassVar[str | None] = None
    not_secret: ClassVar[Iterable[str]] = ()
    timeout: ClassVar[float] = 30.0

    server: ServiceServer
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _headwater_suite_setup(self, headwater_server: ServiceServer, tmp_path: Path) -> None:
        self.server = headwater_server
        self.tmp_path = tmp_path

    # ---- hooks an author may override -------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The instance config the suite runs the connector with.

        Default: the first of the spec's `examples.valid`. Override to give secrets
        distinctive values and to point the connector at ``self.server.url``.
        """
        valid = self.spec().examples.valid
        return copy.deepcopy(valid[0]) if valid else {}

    # ---- helpers for the suites and for authors' own tests ----------------------------

    def spec(self) -> ConnectorSpec:
        spec, problems = load_spec(self._connector())
        if spec is None:
            report(self._connector(), [f"this check needs a valid spec: {p}" for p in problems])
            raise AssertionError(problems)
        return spec

    def effective_region(self) -> str:
        return self.region or self.spec().effective_default_region()

    def make_context(self, endpoint: str | None = None) -> MemoryContext:
        """A fresh context whose ``endpoint`` is the suite's server (or ``endpoint``)."""
        return MemoryContext(
            instance_id=f"conformance-{self.spec().name}",
            region=self.effective_region(),
            data_dir=self.tmp_path,
            endpoint=endpoint if endpoint is not None else self.server.url,
        )

    def instantiate(self, config: dict[str, Any], context: MemoryContext) -> Any:
        cls = self._connector()
        try:
            return cls(config, context)
        except Exception as exc:
            fail(
                cls,
                f"{cls.__name__}(config, context) raised {type(exc).__name__}: "
                f"{self.redact(str(exc), config)}; __init__ must accept every config the "
                "schema accepts (open connections lazily, in send/run)",
            )

    def run(self, coro: Coroutine[Any, Any, T], *, doing: str) -> T:
        """Run ``coro`` in a fresh event loop, bounded by ``timeout``."""
        try:
            return asyncio.run(asyncio.wait_for(coro, self.timeout))
        except TimeoutError:
            fail(
                self._connector(),
                f"{doing} did not finish within {self.timeout:g} s; give every network call "
                "a timeout (and a short one in your conformance config), or raise `timeout` "
                "on your conformance class",
            )

    def secrets(self, config: dict[str, Any]) -> list[Secret]:
        found, problems = secrets_in(config, self.spec())
        report(self._connector(), problems)
        return found

    def redact(self, text: str, config: dict[str, Any]) -> str:
        for secret in secrets_in(config, self.spec())[0]:
            text = text.replace(secret.value, "***")
        return text

    def _connector(self) -> type[Connector]:
        cls = getattr(self, "connector", None)
        if not isinstance(cls, type) or not issubclass(cls, Connector):
            pytest.fail(
                f"{type(self).__name__} must set `connector = YourConnectorClass` (got {cls!r})",
                pytrace=False,
            )
        return cls

    # ---- the checks -------------------------------------------------------------------

    def test_spec_is_valid(self) -> None:
        """spec.json satisfies the meta-schema (fields, types, regions, config schema)."""
        report(self._connector(), load_spec(self._connector())[1])

    def test_spec_direction_matches_class(self) -> None:
        report(self._connector(), direction_problems(self._connector(), self.spec()))

    def test_spec_version_matches_suite(self) -> None:
        """The suite is versioned with the spec: pin headwater-spec to the one you target."""
        report(self._connector(), version_problems(self._connector(), self.spec(), SUITE_VERSION))

    def test_secret_fields_are_marked(self) -> None:
        problems = secret_problems(self._connector(), self.spec(), self.not_secret)
        report(self._connector(), problems)

    def test_example_configs_validate_as_declared(self) -> None:
        report(self._connector(), example_problems(self._connector(), self.spec()))

    def test_regions_declare_endpoints(self) -> None:
        report(self._connector(), region_problems(self._connector(), self.spec()))

    def test_suite_config_is_valid(self) -> None:
        """The config this test class runs with passes the connector's own schema."""
        config = self.config()
        error = next(
            iter(jsonschema.Draft202012Validator(self.spec().config).iter_errors(config)), None
        )
        if error is not None:
            fail(
                self._connector(),
                f"the config of {type(self).__name__}.config() is refused by the spec's config "
                f"schema: {self.redact(error.message, config)}; fix config() or the schema",
            )

    def test_repr_hides_secrets(self) -> None:
        config = self.config()
        secrets = self.secrets(config)

        async def build() -> list[tuple[str, str]]:
            instance = self.instantiate(config, self.make_context())
            try:
                return [
                    ("repr() of the instance", repr(instance)),
                    ("str() of the instance", str(instance)),
                ]
            finally:
                await instance.close()

        texts = self.run(build(), doing="creating and closing an instance")
        report(self._connector(), leaks(secrets, texts))
