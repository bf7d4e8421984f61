"""The config file: `headwater.toml`, or the embedded default."""

from ._durations import DURATION_PATTERN, parse_duration
from ._env import MissingEnvError, env_refs, expand
from ._load import (
    DEFAULT_FILE,
    ConfigError,
    check_connector_options,
    config_from_dict,
    connector_option_errors,
    default_config_text,
    instance_from_dict,
    load_config,
    read_toml,
    resolve_config_path,
)
from ._model import (
    FRAMEWORK_KEYS,
    Config,
    ConnectorInstance,
    LogConfig,
    ServerConfig,
    WorkspaceConfig,
)
from ._retention import RETENTION_PATTERN, RetentionPolicy, parse_retention

__all__ = [
    "DEFAULT_FILE",
    "DURATION_PATTERN",
    "FRAMEWORK_KEYS",
    "RETENTION_PATTERN",
    "Config",
    "ConfigError",
    "ConnectorInstance",
    "LogConfig",
    "MissingEnvError",
    "RetentionPolicy",
    "ServerConfig",
    "WorkspaceConfig",
    "check_connector_options",
    "config_from_dict",
    "connector_option_errors",
    "default_config_text",
    "env_refs",
    "expand",
    "instance_from_dict",
    "load_config",
    "parse_duration",
    "parse_retention",
    "read_toml",
    "resolve_config_path",
]
