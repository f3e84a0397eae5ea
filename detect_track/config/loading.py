"""Building a configuration: defaults, a preset or YAML file, then ``key=value`` overrides.

Every value is converted to the type of the setting it replaces (:func:`coerce_value`:
strings from the command line are read as YAML scalars first), every key is checked, and an
unknown one is refused with the nearest valid key (:func:`unknown_key_error`: "did you
mean ...?"). The presets are the YAML files of ``detect_track/configs/``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from detect_track.config.safe_yaml import MAX_YAML_BYTES, load_yaml
from detect_track.config.schema import Config
from detect_track.config.validation import validate
from detect_track.errors import ConfigError

#: Folder of the bundled presets (package data).
PRESET_DIR = Path(__file__).parent.parent / "configs"
#: Longest text value of a setting (characters).
MAX_TEXT_CHARS = 4096
#: Largest magnitude of a number setting (1e300 would overflow the arithmetic downstream).
MAX_SETTING_FLOAT, MAX_SETTING_INT = 1e9, 10**12


def valid_keys(cls: Any, prefix: str = "") -> list[str]:
    """Dotted names of every leaf setting of a config dataclass (or instance).

    Args:
        cls: A config dataclass (its defaults are listed) or an instance of one.
        prefix: Put before every name (``"tracker."`` for a section).

    Returns:
        Names such as ``tracker.max_gap_s``, in the order of the fields.
    """
    obj = cls() if isinstance(cls, type) else cls
    keys = []
    for f in fields(obj):
        name = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if is_dataclass(value):
            keys.extend(valid_keys(value, f"{name}."))
        else:
            keys.append(name)
    return keys


def unknown_key_error(key: str, valid: list[str]) -> ConfigError:
    """The error for an unknown setting, naming the nearest valid one ("did you mean").

    The whole dotted name is matched first; failing that its last part alone, so
    ``max_gap`` finds ``tracker.max_gap_s``.

    Args:
        key: The unknown name.
        valid: The valid names (:func:`valid_keys`, or any list of names).

    Returns:
        The error to raise.
    """
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        # also try matching the last component alone (e.g. "max_gap" -> "tracker.max_gap_s")
        last = {k.rsplit(".", 1)[-1]: k for k in valid}
        hit = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(last), n=1, cutoff=0.6)
        close = [last[hit[0]]] if hit else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def coerce_value(value: Any, current: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a string override) to the type of ``current``.

    A string is read as a YAML scalar first when the setting is not text. Integers must be
    whole numbers, booleans ``true``/``false``; numbers must be finite and within
    :data:`MAX_SETTING_INT` / :data:`MAX_SETTING_FLOAT`; a setting whose default is None
    takes a number or null.

    Args:
        value: The new value (any YAML value, or the text of an override).
        current: The setting's present value, whose type the result takes.
        key: The setting's dotted name, for the error message.

    Returns:
        The converted value.

    Raises:
        ConfigError: If ``value`` cannot be converted or is out of bounds.
    """
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise ConfigError(f"config key '{key}': value longer than {MAX_TEXT_CHARS} characters")
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = load_yaml(value, f"config key '{key}'")
        except ConfigError:
            raise ConfigError(f"config key '{key}': cannot parse {value[:80]!r}") from None
    if value is None and isinstance(current, (int, float)):  # bool is an int too
        raise ConfigError(f"config key '{key}' cannot be null: it expects "
                          f"{'true or false' if isinstance(current, bool) else 'a number'}")
    if current is None or value is None:
        if value is not None and not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
        return None if value is None else float(value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' expects true or false, got {value!r}")
        return value
    if isinstance(current, int) and not isinstance(current, bool):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value != int(value)):
            raise ConfigError(f"config key '{key}' expects an integer, got {value!r}")
        if abs(value) > MAX_SETTING_INT:
            raise ConfigError(f"config key '{key}' must be within +-{MAX_SETTING_INT:.0e}, "
                              f"got {value!r}")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' expects a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"config key '{key}' must be finite, got {value!r}")
        if abs(value) > MAX_SETTING_FLOAT:
            raise ConfigError(f"config key '{key}' must be within +-{MAX_SETTING_FLOAT:.0e}, "
                              f"got {value!r}")
        return float(value)
    if isinstance(current, str):
        text = str(value)
        if len(text) > MAX_TEXT_CHARS:
            raise ConfigError(f"config key '{key}': value longer than {MAX_TEXT_CHARS} "
                              "characters")
        return text
    raise ConfigError(f"config key '{key}' cannot be set")  # pragma: no cover


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _set(cfg: Any, parts: list[str], value: Any, key: str) -> Any:
    name = parts[0]
    current = getattr(cfg, name)
    if len(parts) == 1:
        if is_dataclass(current):
            raise unknown_key_error(key, valid_keys(Config))
        return dataclasses.replace(cfg, **{name: coerce_value(value, current, key)})
    return dataclasses.replace(cfg, **{name: _set(current, parts[1:], value, key)})


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return ``cfg`` with dotted-key overrides applied (e.g. ``{"tracker.max_gap_s": 0.3}``).

    Raises:
        ConfigError: On an unknown key (with a suggestion) or a value of the wrong type.
    """
    valid = valid_keys(Config)
    for key, value in overrides.items():
        if key not in valid:
            raise unknown_key_error(key, valid)
        cfg = _set(cfg, key.split("."), value, key)
    validate(cfg)
    return cfg


def parse_overrides(items: list[str]) -> dict[str, str]:
    """Parse ``["a.b=1", ...]`` into a dict; values stay strings until applied."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        out[key.strip()] = value.strip()
    return out


def list_presets() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_config(preset_or_file: str | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """Build a configuration from defaults, a preset or YAML file, and overrides.

    Args:
        preset_or_file: A preset name (``sperm``) or a path to a YAML file; None = defaults.
        overrides: Dotted keys to values, applied last.

    Returns:
        The validated, frozen configuration.

    Raises:
        ConfigError: Unknown preset, unreadable file, unknown key or invalid value.
    """
    cfg = Config()
    if preset_or_file:
        path = Path(preset_or_file)
        if not path.suffix and (PRESET_DIR / f"{preset_or_file}.yaml").exists():
            path = PRESET_DIR / f"{preset_or_file}.yaml"
        if not path.is_file():
            names = list_presets()
            close = difflib.get_close_matches(str(preset_or_file), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (presets: {', '.join(names)})"
            raise ConfigError(f"no preset or config file '{preset_or_file}'{hint}")
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_YAML_BYTES + 1)
            if len(raw) > MAX_YAML_BYTES:
                raise ConfigError(f"config file '{path}' is larger than "
                                  f"{MAX_YAML_BYTES // 1024} kB; refused")
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file '{path}': {exc}") from exc
        data = load_yaml(text, f"config file '{path}'") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of sections")
        cfg = apply_overrides(cfg, _flatten(data))
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg
