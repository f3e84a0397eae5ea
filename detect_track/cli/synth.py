"""``detect-track synth OUT_DIR``: simulate a microscopy video with ground truth."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from detect_track.cli.shared import float_arg, parser, progress_bar
from detect_track.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``detect-track synth``."""
    p = parser("synth",
               "Simulate a microscopy video of sperm with ground truth: the video, "
               "gt/gt.txt (MOTChallenge head boxes), truth_tracks.csv (true kinematics and "
               "motility class per cell) and truth.json.",
               "Any other simulator setting can be given as KEY=VALUE, e.g. "
               "n_debris=30 look=phase_dark.\nexample: detect-track synth sim/ --seed 3 "
               "--duration-s 10 --n-cells 50\n         detect-track synth sim/ --preset visem")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the video and truth into")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="simulator settings")
    p.add_argument("--seed", type=int, help="random seed (same seed, same video)")
    p.add_argument("--duration-s", type=float_arg("--duration-s"), help="length in seconds")
    p.add_argument("--fps", type=float_arg("--fps"), help="frames per second")
    p.add_argument("--um-per-px", type=float_arg("--um-per-px"), help="micrometres per pixel")
    p.add_argument("--n-cells", type=int, help="number of cells")
    p.add_argument("--width", type=int, dest="width_px", help="frame width in px")
    p.add_argument("--height", type=int, dest="height_px", help="frame height in px")
    p.add_argument("--random", action="store_true",
                   help="draw all conditions at random from the seed (wide variation)")
    p.add_argument("--preset", metavar="NAME",
                   help="start from a preset fitted to real footage: visem (VISEM-Tracking "
                   "look and motion, 0.5 um/px, 49 fps)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def synth_config_from(base: Any, values: dict[str, Any]) -> Any:
    """Apply ``values`` (strings or numbers) to a simulator config, checking names and types.

    Args:
        base: A :class:`detect_track.synth.SynthConfig`.
        values: Setting names to values (texts from the command line, or numbers).

    Returns:
        A new config with the values set.

    Raises:
        ConfigError: On an unknown setting (with a suggestion) or a bad value.
    """
    from detect_track.config import coerce_value, unknown_key_error

    names = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for key, value in values.items():
        if key not in names:
            raise unknown_key_error(key, names)
        changes[key] = coerce_value(value, getattr(base, key), key)
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def main(argv: Sequence[str]) -> int:
    """``detect-track synth OUT_DIR``: simulate a video with ground truth.

    Args:
        argv: The command line after ``synth``.

    Returns:
        The exit status (0).
    """
    p = build_parser()
    if not argv:
        p.error("no OUT_DIR given")
    args = p.parse_intermixed_args(argv)
    from detect_track.config import parse_overrides
    from detect_track.synth import SynthConfig, random_config, simulate
    from detect_track.synth.config import preset_config

    values: dict[str, Any] = parse_overrides(args.overrides)
    for key in ("duration_s", "fps", "um_per_px", "n_cells", "width_px", "height_px"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    seed = args.seed if args.seed is not None else 0
    if args.preset and args.random:
        raise ConfigError("synth: --preset and --random exclude each other")
    if args.preset:
        base = preset_config(args.preset, seed=seed)
    else:
        base = random_config(seed) if args.random else SynthConfig(seed=seed)
    cfg = synth_config_from(base, values)
    from detect_track.io.detections import MAX_FRAMES
    from detect_track.io.video import DEFAULT_MAX_PIXELS

    if cfg.width_px * cfg.height_px > DEFAULT_MAX_PIXELS:  # a typo must not fill the memory
        raise ConfigError(f"synth: {cfg.width_px} x {cfg.height_px} px is more than "
                          f"{DEFAULT_MAX_PIXELS / 1e6:g} Mpx")
    if cfg.duration_s * cfg.fps > MAX_FRAMES or cfg.n_cells > 100_000:
        raise ConfigError(f"synth: at most {MAX_FRAMES:,} frames and 100,000 cells")
    update, close = progress_bar("simulating", args.quiet)
    try:
        res = simulate(args.out_dir, cfg, progress=update)
    finally:
        close()
    print(f"simulated {res.n_tracks} tracks -> {res.video_path} (truth: {res.gt_path}, "
          f"{res.tracks_path}, {res.meta_path})")
    return 0
