"""Configuration: frozen dataclasses per stage, YAML presets, ``key=value`` overrides.

A configuration is built from (in increasing priority) the defaults below, a preset
(``detect_track/configs/<name>.yaml``) or a YAML file, and ``section.key=value``
overrides from the command line. Unknown keys are rejected with a suggestion of the
nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from detect_track.errors import ConfigError
from detect_track.io.meta import check_fps, check_um_per_px

if TYPE_CHECKING:  # the tracing module imports cv2 and scipy: loaded only when tracing
    from detect_track.detectors.tails import TailTraceSettings

PRESET_DIR = Path(__file__).parent / "configs"
#: Largest config file read (bytes): a configuration is a few kB.
MAX_YAML_BYTES = 1 << 20
#: Most YAML nodes a document may expand to once aliases are followed ("billion laughs").
MAX_YAML_NODES = 100_000
#: Longest text value of a setting (characters).
MAX_TEXT_CHARS = 4096
#: Largest magnitude of a number setting (1e300 would overflow the arithmetic downstream).
MAX_SETTING_FLOAT, MAX_SETTING_INT = 1e9, 10**12


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


@dataclass(frozen=True)
class VideoConfig:
    """Frame source settings."""

    fps: float | None = None  # frames per second; None = read from the container
    default_fps: float | None = None  # for inputs without a frame rate (frames, TIFF); flagged
    um_per_px: float | None = None  # micrometres per pixel; None = default_um_per_px
    default_um_per_px: float = 0.7  # used (and flagged in summary.json) when nothing is given
    max_fps: float = 2000.0  # fps above this is rejected as absurd
    chamber_depth_um: float | None = None  # counting-chamber depth in µm (e.g. 20): concentration
    read_ahead_frames: int = 8  # frames decoded ahead in a background thread (0 = 1)
    max_pixels: int = 100_000_000  # largest frame or image read (width x height); checked
    # from the file header before decoding, so a 20000 x 20000 PNG cannot fill the memory


@dataclass(frozen=True)
class ClassicalConfig:
    """Classical detector: band-pass filter, threshold, local maxima. Sizes in µm."""

    head_length_um: float = 4.5  # expected sperm head length (sets the filter scale)
    polarity: str = "auto"  # "bright" heads, "dark" heads, or "auto" (decided per video)
    threshold_sigma: float = 4.5  # detection threshold in robust noise standard deviations
    score_midpoint_sigma: float = 4.5  # response (in noise std) that gets confidence 0.5
    min_contrast: float = 0.02  # ... and never below this band-passed contrast (fraction of bg)
    min_separation_um: float = 4.0  # two heads closer than this are merged into one
    min_area_um2: float = 4.0  # smallest head area kept (measured at half the peak height)
    max_area_um2: float = 120.0  # largest blob above threshold kept (larger: debris)
    background_sigma_um: float = 12.0  # scale of the removed background (uneven light)


@dataclass(frozen=True)
class LearnedConfig:
    """Settings shared by the learned detectors (YOLO, EfficientDet)."""

    weights: str = ""  # name of a file in weights/ (no suffix) or a path; "" = the shipped one
    confidence: float = 0.05  # keep detections whose raw model score is at least this
    operating_confidence: float = 0.5  # raw score reported as 0.5 (where tracks may start)
    iou: float = 0.5  # non-maximum suppression IoU (models that need NMS)
    max_det: int = 1000  # most detections per frame
    device: str = "cpu"  # "cpu", or a CUDA device such as "cuda:0"
    min_um_per_px: float = 0.3  # frames finer than this are shrunk to it (training range)
    max_um_per_px: float = 1.2  # frames coarser than this are enlarged to it
    min_head_um: float = 2.0  # "sperm" boxes whose longer side is shorter than this are
    # dropped (a head is 4-5.5 µm long: specks, not heads); only with a stated scale; 0 = off
    tta_views: int = 1  # views fused per image: 1 = the image only, 4 = and its flips, 8 = and
    # its 90° rotations (detectors/views.py): better AP on stills, N times the detection time;
    # operating_confidence then refers to the fused score (calibrate with the views on)
    verifier: str = ""  # crop classifier that looks again at each "sperm" box and tells heads
    # from debris (detectors/verify.py; a name in weights/ or a path): the box's score becomes
    # sqrt(raw score x P(sperm)), calibrated at verifier_operating; "" = off
    verifier_operating: float = 0.5  # verified sperm score reported as 0.5 (model card)


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector runs, and its settings."""

    name: str = "yolo"  # registered detector name (see `detect-track --help`)
    backend: str = "auto"  # YOLO + morphology: onnx (fast, no torch), torch; auto = onnx if it can
    onnx_runtime: str = "auto"  # what runs the YOLO .onnx: onnxruntime, or openvino (faster
    # on CPUs with bfloat16, which it then uses: boxes within ~0.5 px); auto = openvino if
    # installed, else onnxruntime
    track_classes: str = "sperm,small_or_pinhead"  # classes linked into tracks (comma list)
    classical: ClassicalConfig = field(default_factory=ClassicalConfig)  # classical settings
    yolo: LearnedConfig = field(  # YOLO settings (operating point: weights/yolo-sperm.md; no
        # verifier: it learned simulated debris and drops real heads, benchmarks/real.md)
        default_factory=lambda: LearnedConfig(operating_confidence=0.25))
    effdet: LearnedConfig = field(  # EfficientDet settings (operating point: its card)
        default_factory=lambda: LearnedConfig(confidence=0.1, operating_confidence=0.325,
                                              verifier="sperm-verifier",
                                              verifier_operating=0.45))


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings. Distances in µm, times in seconds; every tracker reads them.

    ``sort`` uses all keys; ``bytetrack`` and ``botsort`` (ultralytics, IoU-based) use the
    confidences, ``max_gap_s`` and ``iou_match``; ``trackpy`` uses ``max_speed_um_s``,
    ``gate_min_um`` and ``max_gap_s``. The track filters (``min_track_s`` ...) apply to all.
    """

    name: str = "sort"  # registered tracker name: sort, bytetrack, botsort, trackpy
    max_speed_um_s: float = 350.0  # fastest plausible head speed between two frames (VCL
    # of hyperactivated cells reaches ~300 µm/s, and the beat adds to it); gates association
    gate_min_um: float = 3.0  # association gate never smaller than this
    gate_sigma: float = 4.0  # sort: a track bridging a gap also needs a detection within
    # this many predicted std devs (0 = off); 4 (was 8) stops coasting tracks grabbing cells
    # that appear nearby (VISEM tuning videos, benchmarks/real_motility.md)
    max_gap_s: float = 0.8  # a track survives this long without a detection
    coast_penalty_um_s: float = 100.0  # sort: association cost added per second a track has
    # been coasting (µm/s), so a track seen in the last frame wins a near tie
    min_track_s: float = 0.2  # shorter tracks are dropped from the results (a cell seen
    # briefly still counts; the motility of one seen < motility.min_gradable_s is not graded)
    high_confidence: float = 0.5  # detections at least this sure can start tracks
    new_track_min_distance_um: float = 5.0  # sort: ... but not this close to a linked one
    # (about a head length: a second answer on the same cell, e.g. its midpiece)
    min_confidence: float = 0.1  # weaker ones (down to this) can only extend existing tracks
    weak_penalty_um: float = 2.0  # sort: association cost added to such a weak detection
    # (µm): it wins a track only when this much closer than a confident one
    min_confident_fraction: float = 0.5  # tracks with fewer confident detections are dropped
    satellite_radius_um: float = 10.0  # a track this close to a stronger one ...
    satellite_fraction: float = 0.6  # ... in this fraction of its frames is a tail or duplicate
    satellite_confidence_margin: float = 0.0  # ... whose mean confidence is higher by more
    # than this: equally sure tracks (annotated points, heads side by side) are both kept
    process_noise_um_s2: float = 50.0  # Kalman random acceleration (std, µm/s²): how fast a
    # swimmer changes its mean velocity; the head's beat is left to the measurement noise
    measurement_noise_um: float = 2.0  # detected centre error incl. head wobble (std, µm)
    initial_speed_um_s: float = 100.0  # velocity uncertainty of a new track (std, µm/s)
    association: str = "distance"  # sort cost: distance to prediction | mahalanobis
    kalman: str = "numpy"  # sort filters: numpy (batched) | filterpy (reference, slower)
    iou_match: float = 0.8  # bytetrack/botsort: max association cost (1 - IoU, fused)


@dataclass(frozen=True)
class KinematicsConfig:
    """CASA kinematics settings."""

    smoothing_window_frames: int = 5  # moving-average window of the average path (VAP), frames
    progression_window_s: float = 2.0  # progression_um_s = median net displacement over windows
    # of this many seconds, per second (jitter averages out; same value at 9 and 49 fps)


@dataclass(frozen=True)
class MotilityConfig:
    """WHO motility gates (6th edition), measured on real tracks (README, "Motility")."""

    rule: str = "progression"  # progression: gates on progression_um_s (below; fitted on real
    # VISEM tracks) | casa: the classic CASA gates on VAP and STR
    progressive_um_s: float = 20.0  # progression: progressive when progression_um_s >= this
    immotile_um_s: float = 4.0  # progression: immotile when motion_um_s is below this, unless
    # the head beats in place (immotile_vcl_um_s, immotile_alh_um)
    min_gradable_s: float = 1.0  # cells seen for less are graded only when clearly progressive
    # (next key), else not_gradable (class and grade; left out of the percentages)
    short_progressive_um: float = 10.0  # ... i.e. net displacement >= this at VSL >=
    # progressive_um_s (rule progression) or VAP/STR gates (rule casa)
    progressive_vap_um_s: float = 25.0  # casa: progressive needs VAP at least this
    progressive_str: float = 0.8  # casa: ... and straightness (VSL/VAP) at least this
    immotile_vap_um_s: float = 5.0  # casa: below this VAP a cell counts as immotile
    immotile_vcl_um_s: float = 15.0  # ... unless its VCL is above this with a beating head
    immotile_alh_um: float = 1.0  # head lateral amplitude that shows an active beat
    grade_a_vsl_um_s: float = 25.0  # progressive cells with VSL (rule progression:
    # progression_um_s) >= this are grade a, else b
    grade_b_vsl_um_s: float = 5.0  # casa: straight (STR gate) but slower cells with VSL >= this: b


@dataclass(frozen=True)
class MorphologyConfig:
    """Head morphology from the sharpest isolated crops of each track."""

    enabled: bool = True  # classify each track's head (needs the ml extra)
    weights: str = ""  # head-shape model; "" = shipped weights/head-shape-synth.pt
    crops_per_track: int = 3  # sharpest isolated crops kept and averaged per track
    crop_um: float = 10.7  # side of a crop, µm (cut at native resolution)
    isolation_um: float = 8.0  # no crop while another detection is this close, µm
    tta_views: int = 0  # rotations/flips averaged per crop: 1, 2, 4, 8; 0 = 2 in videos
    # (whose tracks also average crops_per_track crops), 8 on still images
    device: str = "cpu"  # cpu or cuda:0


@dataclass(frozen=True)
class StillConfig:
    """Still images (stained slides, smears): detect, classify and count, no tracking."""

    enabled: bool = False  # True: inputs are still images (the sperm-slide preset sets it)
    tile_px: int = 1024  # larger images are detected in tiles of this side (model px) ...
    overlap_px: int = 64  # ... overlapping by this much; boxes are merged across the seams
    annotate: bool = True  # write annotated/<image>.png with the boxes drawn
    min_confidence: float = 0.5  # boxes below this (calibrated; 0.5 = operating point) are dropped
    whole_cells: str = "model"  # whole-sperm boxes: "model" (the detector's own) or "traced"
    #   (each sperm_head box grown along its traced tail; detectors/tails.py; bright field)
    trace_um_per_px: float = 0.106  # tails are traced on the image resampled to this scale
    tail_threshold: float = 2.0  # ridge strength a traced tail keeps (robust noise units)
    tail_gap_um: float = 1.6  # faint or broken stretches of a tail up to this long are jumped
    max_cell_length_um: float = 80.0  # a trace stops after this length (human sperm ~60 µm)
    tail_map: str = ""  # learned tail map followed instead of the ridge map: an ONNX file or
    #   a name in weights/ (tail-map-slide: trained on real stained slides); "": ridge map
    tail_map_threshold: float = 0.3  # tail probability a traced tail keeps on that map
    reclassify: str = ""  # colour crop classifier that decides the class of the small cells
    #   it knows again (a file or a name in weights/; detectors/reclassify.py): "" off;
    #   smear-cell-classifier (testicular preset): elongated spermatid / immature / mature


@dataclass(frozen=True)
class Config:
    """Full pipeline configuration."""

    video: VideoConfig = field(default_factory=VideoConfig)  # frame source
    detector: DetectorConfig = field(default_factory=DetectorConfig)  # detection stage
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # tracking stage
    kinematics: KinematicsConfig = field(default_factory=KinematicsConfig)  # CASA kinematics
    motility: MotilityConfig = field(default_factory=MotilityConfig)  # WHO classes
    morphology: MorphologyConfig = field(default_factory=MorphologyConfig)  # head shape
    still: StillConfig = field(default_factory=StillConfig)  # still-image mode


def _valid_keys(cls: Any, prefix: str = "") -> list[str]:
    """Dotted names of every leaf setting of a config dataclass (or instance)."""
    obj = cls() if isinstance(cls, type) else cls
    keys = []
    for f in fields(obj):
        name = f"{prefix}{f.name}"
        value = getattr(obj, f.name)
        if is_dataclass(value):
            keys.extend(_valid_keys(value, f"{name}."))
        else:
            keys.append(name)
    return keys


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        # also try matching the last component alone (e.g. "max_gap" -> "tracker.max_gap_s")
        last = {k.rsplit(".", 1)[-1]: k for k in valid}
        hit = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(last), n=1, cutoff=0.6)
        close = [last[hit[0]]] if hit else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _coerce(value: Any, current: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a string override) to the type of ``current``."""
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise ConfigError(f"config key '{key}': value longer than {MAX_TEXT_CHARS} characters")
    if isinstance(value, str) and not isinstance(current, str):
        try:
            value = load_yaml(value, f"config key '{key}'")
        except ConfigError:
            raise ConfigError(f"config key '{key}': cannot parse {value[:80]!r}") from None
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
            raise _unknown_key(key, _valid_keys(Config))
        return dataclasses.replace(cfg, **{name: _coerce(value, current, key)})
    return dataclasses.replace(cfg, **{name: _set(current, parts[1:], value, key)})


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return ``cfg`` with dotted-key overrides applied (e.g. ``{"tracker.max_gap_s": 0.3}``).

    Raises:
        ConfigError: On an unknown key (with a suggestion) or a value of the wrong type.
    """
    valid = _valid_keys(Config)
    for key, value in overrides.items():
        if key not in valid:
            raise _unknown_key(key, valid)
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


def validate(cfg: Config) -> None:
    """Check value ranges that types alone cannot express.

    Raises:
        ConfigError: On the first invalid value.
    """
    v, t, c = cfg.video, cfg.tracker, cfg.detector.classical
    if v.fps is not None:
        check_fps(v.fps, "video.fps", v.max_fps)
    if v.default_fps is not None:
        check_fps(v.default_fps, "video.default_fps", v.max_fps)
    if v.um_per_px is not None:
        check_um_per_px(v.um_per_px, "video.um_per_px")
    check_um_per_px(v.default_um_per_px, "video.default_um_per_px")
    if v.chamber_depth_um is not None and not (0 < v.chamber_depth_um <= 1000):
        raise ConfigError("video.chamber_depth_um (--chamber-depth-um) must be in (0, 1000], "
                          f"got {v.chamber_depth_um:g}")
    if c.polarity not in ("auto", "bright", "dark"):
        raise ConfigError("detector.classical.polarity must be auto, bright or dark, "
                          f"got {c.polarity!r}")
    for name in ("head_length_um", "threshold_sigma", "background_sigma_um", "max_area_um2"):
        if getattr(c, name) <= 0:
            raise ConfigError(f"detector.classical.{name} must be > 0")
    for name in ("max_speed_um_s", "measurement_noise_um", "process_noise_um_s2",
                 "initial_speed_um_s"):
        if getattr(t, name) <= 0:
            raise ConfigError(f"tracker.{name} must be > 0")
    for name in ("max_gap_s", "min_track_s", "gate_min_um", "new_track_min_distance_um",
                 "gate_sigma", "coast_penalty_um_s", "satellite_confidence_margin"):
        if getattr(t, name) < 0:
            raise ConfigError(f"tracker.{name} must be >= 0")
    if cfg.detector.backend not in ("auto", "torch", "onnx"):
        raise ConfigError(f"detector.backend must be auto, torch or onnx, "
                          f"got {cfg.detector.backend!r}")
    if cfg.detector.onnx_runtime not in ("auto", "onnxruntime", "openvino"):
        raise ConfigError(f"detector.onnx_runtime must be auto, onnxruntime or openvino, "
                          f"got {cfg.detector.onnx_runtime!r}")
    if t.association not in ("distance", "mahalanobis"):
        raise ConfigError(f"tracker.association must be distance or mahalanobis, "
                          f"got {t.association!r}")
    if t.kalman not in ("numpy", "filterpy"):
        raise ConfigError(f"tracker.kalman must be numpy or filterpy, got {t.kalman!r}")
    if not 0.0 < t.iou_match <= 1.0:
        raise ConfigError("tracker.iou_match must be in (0, 1]")
    for section in ("yolo", "effdet"):
        d = getattr(cfg.detector, section)
        if not 0.0 <= d.confidence < 1.0 or not 0.0 < d.iou <= 1.0:
            raise ConfigError(f"detector.{section}.confidence must be in [0, 1) and iou in (0, 1]")
        if not 0.0 < d.operating_confidence < 1.0:
            raise ConfigError(f"detector.{section}.operating_confidence must be in (0, 1)")
        if not 0.0 < d.verifier_operating < 1.0:
            raise ConfigError(f"detector.{section}.verifier_operating must be in (0, 1)")
        if d.max_det < 1:
            raise ConfigError(f"detector.{section}.max_det must be >= 1")
        if not 0.0 < d.min_um_per_px <= d.max_um_per_px:
            raise ConfigError(f"detector.{section}: need 0 < min_um_per_px <= max_um_per_px")
    m = cfg.morphology
    if m.crops_per_track < 1 or not m.crop_um > 0 or m.isolation_um < 0:
        raise ConfigError("morphology: crops_per_track >= 1, crop_um > 0, isolation_um >= 0")
    if m.tta_views not in (0, 1, 2, 4, 8):
        raise ConfigError(f"morphology.tta_views must be 0 (auto), 1, 2, 4 or 8, got "
                          f"{m.tta_views}")
    if not 0.0 <= cfg.still.min_confidence <= 1.0:
        raise ConfigError("still.min_confidence must be in [0, 1]")
    if cfg.still.tile_px < 64 or not 0 <= cfg.still.overlap_px < cfg.still.tile_px // 2:
        raise ConfigError("still.tile_px must be >= 64 and still.overlap_px in "
                          "[0, tile_px / 2)")
    if cfg.still.whole_cells not in ("model", "traced"):
        raise ConfigError(f"still.whole_cells must be 'model' or 'traced', got "
                          f"{cfg.still.whole_cells!r}")
    for name in ("trace_um_per_px", "tail_threshold", "tail_gap_um", "max_cell_length_um"):
        if not math.isfinite(getattr(cfg.still, name)) or getattr(cfg.still, name) <= 0:
            raise ConfigError(f"still.{name} must be > 0")
    if not 0 < cfg.still.tail_map_threshold < 1:
        raise ConfigError("still.tail_map_threshold must be in (0, 1)")
    if v.read_ahead_frames < 0:
        raise ConfigError("video.read_ahead_frames must be >= 0")
    if v.max_pixels < 1:
        raise ConfigError("video.max_pixels must be >= 1")
    if cfg.kinematics.smoothing_window_frames < 1:
        raise ConfigError("kinematics.smoothing_window_frames must be >= 1")
    if not (math.isfinite(cfg.kinematics.progression_window_s)
            and cfg.kinematics.progression_window_s > 0):
        raise ConfigError("kinematics.progression_window_s must be > 0")
    if cfg.motility.rule not in ("progression", "casa"):
        raise ConfigError(f"motility.rule must be progression or casa, got {cfg.motility.rule!r}")


def tail_trace_settings(cfg: Config) -> TailTraceSettings:
    """The tail-tracing settings of ``cfg.still`` (:class:`TailTraceSettings`).

    Raises:
        ConfigError: A non-positive scale, threshold, gap or length.
    """
    from detect_track.detectors.tails import TailTraceSettings

    st = cfg.still
    return TailTraceSettings(um_per_px=st.trace_um_per_px, threshold=st.tail_threshold,
                             gap_um=st.tail_gap_um, max_length_um=st.max_cell_length_um,
                             tail_map=st.tail_map, map_threshold=st.tail_map_threshold)


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of a configuration (for summary.json)."""
    return dataclasses.asdict(cfg)
