"""The settings of every stage: frozen dataclasses, one comment per key.

:class:`Config` holds one section per stage (``video``, ``detector``, ``tracker``,
``kinematics``, ``motility``, ``morphology``, ``still``); the defaults here are what
``detect_track/configs/sperm.yaml`` restates. Build a configuration with
:func:`detect_track.config.load_config` (presets, YAML files, overrides, checked), never
by hand-editing these defaults for one run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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
    min_px_per_um: float = 2.5  # videos coarser than this (px per µm) get no head-shape call:
    # the calls carry too little information (benchmarks/morphology.md, "Resolution")


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


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of a configuration (for summary.json)."""
    return dataclasses.asdict(cfg)
