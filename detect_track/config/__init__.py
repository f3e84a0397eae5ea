"""Configuration: frozen dataclasses per stage, YAML presets, ``key=value`` overrides.

A configuration is built from (in increasing priority) the defaults of
:mod:`~detect_track.config.schema`, a preset (``detect_track/configs/<name>.yaml``) or a
YAML file, and ``section.key=value`` overrides from the command line
(:mod:`~detect_track.config.loading`). Unknown keys are rejected with a suggestion of the
nearest valid key; value ranges are checked by :mod:`~detect_track.config.validation`;
YAML is read by :mod:`~detect_track.config.safe_yaml`.

The names below are the package's public interface: import them from
``detect_track.config``, not from its modules.
"""

from detect_track.config.loading import (
    MAX_SETTING_FLOAT,
    MAX_SETTING_INT,
    MAX_TEXT_CHARS,
    PRESET_DIR,
    apply_overrides,
    coerce_value,
    list_presets,
    load_config,
    parse_overrides,
    unknown_key_error,
    valid_keys,
)
from detect_track.config.safe_yaml import MAX_YAML_BYTES, MAX_YAML_NODES, load_yaml
from detect_track.config.schema import (
    ClassicalConfig,
    Config,
    DetectorConfig,
    KinematicsConfig,
    LearnedConfig,
    MorphologyConfig,
    MotilityConfig,
    StillConfig,
    TrackerConfig,
    VideoConfig,
    to_dict,
)
from detect_track.config.validation import validate

__all__ = [
    "MAX_SETTING_FLOAT",
    "MAX_SETTING_INT",
    "MAX_TEXT_CHARS",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "PRESET_DIR",
    "ClassicalConfig",
    "Config",
    "DetectorConfig",
    "KinematicsConfig",
    "LearnedConfig",
    "MorphologyConfig",
    "MotilityConfig",
    "StillConfig",
    "TrackerConfig",
    "VideoConfig",
    "apply_overrides",
    "coerce_value",
    "list_presets",
    "load_config",
    "load_yaml",
    "parse_overrides",
    "to_dict",
    "unknown_key_error",
    "valid_keys",
    "validate",
]
