"""What a destination instance is given by the router (the ConnectorContext protocol)."""

from __future__ import annotations

import logging
from pathlib import Path


class InstanceContext:
    """Immutable facts about one configured instance; its logger is named after it so log
    records can be filtered per instance (``headwater.destination.<id>``)."""

    def __init__(
        self, instance_id: str, region: str, data_dir: Path, endpoint: str | None = None
    ) -> None:
        self._instance_id = instance_id
        self._region = region
        self._data_dir = Path(data_dir)
        self._endpoint = endpoint
        self._logger = logging.getLogger(f"headwater.destination.{instance_id}")

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def region(self) -> str:
        return self._region

    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def logger(self) -> logging.Logger:
        return self._logger
