"""The daemon behind `headwater serve`: one HTTP server for ingestion, probes, metrics and
the admin API, the pull sources, and the services (router, replay) beside them."""

from ._app import Daemon, DaemonError
from ._context import InstanceContext
from ._gc import tune_gc_for_serving
from ._http import HttpServer
from ._logging import setup_logging
from ._metrics import Counter, Gauge, Histogram, Metrics
from ._routes import RouteTable
from ._run import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, run, serve
from ._runfile import RUNFILE, RunInfo, read_runfile
from ._services import Service, build_services

__all__ = [
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_RUNTIME",
    "RUNFILE",
    "Counter",
    "Daemon",
    "DaemonError",
    "Gauge",
    "Histogram",
    "HttpServer",
    "InstanceContext",
    "Metrics",
    "RouteTable",
    "RunInfo",
    "Service",
    "build_services",
    "read_runfile",
    "run",
    "serve",
    "setup_logging",
    "tune_gc_for_serving",
]
