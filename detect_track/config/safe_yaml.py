"""Reading untrusted YAML safely: no Python objects, bounded size, depth and aliases.

Config files, presets and ``section.key=value`` override values are YAML; so are the
dataset files the command line reads. All go through :func:`load_yaml`.
"""

from __future__ import annotations

from typing import Any

import yaml

from detect_track.errors import ConfigError

#: Largest config file read (bytes): a configuration is a few kB.
MAX_YAML_BYTES = 1 << 20
#: Most YAML nodes a document may expand to once aliases are followed ("billion laughs").
MAX_YAML_NODES = 100_000


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a YAML graph that aliases would expand past :data:`MAX_YAML_NODES`, or a cycle.

    Sizes are counted on the graph (each node once), so the check itself stays cheap.

    Raises:
        ConfigError: On a recursive alias or too large an expansion.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _yaml_children(node))
            if sizes[key] > MAX_YAML_NODES:
                raise ConfigError(f"YAML expands to more than {MAX_YAML_NODES} values (aliases "
                                  "repeated many times?); refused")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError("YAML holds a recursive alias; refused")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _yaml_children(node) if id(c) not in sizes)


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python objects) that also refuses alias bombs and cycles."""

    def construct_document(self, node: yaml.Node) -> Any:
        """Check the expansion of the composed document, then build it."""
        _check_expansion(node)
        return super().construct_document(node)


def load_yaml(text: str, source: str) -> Any:
    """Parse untrusted YAML text safely: no code, bounded size, depth and alias expansion.

    Args:
        text: The YAML document.
        source: What it is, for the error message (a file name, a config key).

    Raises:
        ConfigError: Too long, not valid YAML, too deep, or expanding too far.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source} is larger than {MAX_YAML_BYTES // 1024} kB; refused")
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read {source}: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"cannot read {source}: nested too deeply") from None
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
