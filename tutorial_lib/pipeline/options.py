"""The options of sliced inference, as two frozen objects checked once when they are made.

:class:`SliceOptions` says how a large scene is cut and predicted (tile size, overlap, a whole-scene pass, tiles
per model call); :class:`MergeOptions` says how the tiles' detections become instances (merge mode, match metric,
masks or boxes, match threshold). The CLI flags, the pipeline's keywords and the serving request's fields are all
turned into these two objects, and everything below them (:mod:`.sliced`, :mod:`.geo`, :mod:`.batch`) takes the
objects, never the loose values. A bad value is a :class:`~tutorial_lib.errors.UserError` naming it and what is
allowed, raised before any work starts.
"""
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..errors import UserError

MERGE_MODES = ("GREEDYNMM", "NMM", "NMS")
MATCH_METRICS = ("IOU", "IOS")
MATCH_ON = ("masks", "boxes")
MIN_SLICE = 16  # the smallest tile side, in pixels
WHOLE_TILE_MAX = 2048  # slice_size=None: scenes up to this size are predicted as one tile ...
AUTO_SLICE = 1024  # ... larger ones in tiles of this size


def _whole_number(name: str, value: Any, allowed: str) -> int:
    """``value`` as an int, or a UserError naming ``name`` and what is ``allowed``."""
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be {allowed}, got {value!r}") from None


def _number(name: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be {allowed}, got {value!r}") from None
    if not 0 <= number < 1:  # NaN fails here too
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    return number


def _choice(name: str, value: Any, allowed: Tuple[str, ...], upper: bool) -> str:
    text = str(value).upper() if upper else str(value).lower()
    if text not in allowed:
        raise UserError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return text


@dataclass(frozen=True)
class SliceOptions:
    """How a scene is cut into tiles and predicted.

    ``slice_size``: tile side in pixels (>= 16), or None: automatic for a GeoTIFF (one tile up to
    ``WHOLE_TILE_MAX`` px, else ``AUTO_SLICE`` px tiles) and no slicing for an ordinary image.
    ``overlap_ratio``: the share of a tile its neighbour repeats, in [0, 1).
    ``full_image``: also predict the whole scene downscaled and merge it in: True (to the tile size), False, or a
    size in pixels (0 = off). ``batch_size``: tiles per model call (None: the pipeline's, 1 without a pipeline).
    """

    slice_size: Optional[int] = 512
    overlap_ratio: float = 0.2
    full_image: Union[bool, int] = False
    batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.slice_size is not None:
            size = _whole_number("slice_size", self.slice_size, f"a whole number of pixels >= {MIN_SLICE}, or None")
            if size < MIN_SLICE:
                raise UserError(f"slice_size must be >= {MIN_SLICE} pixels (or None: automatic), got {size}")
            object.__setattr__(self, "slice_size", size)
        object.__setattr__(self, "overlap_ratio",
                           _number("overlap_ratio", self.overlap_ratio, "a number in [0, 1)"))
        if not isinstance(self.full_image, bool):
            size = _whole_number("full_image", self.full_image, "True, False or a size in pixels")
            if size < 0:
                raise UserError(f"full_image must be True, False or a size in pixels, got {size}")
            object.__setattr__(self, "full_image", size)
        if self.batch_size is not None:
            batch = _whole_number("batch_size", self.batch_size, "a whole number >= 1, or None")
            if batch < 1:
                raise UserError(f"batch_size must be >= 1 (or None: the pipeline's), got {batch}")
            object.__setattr__(self, "batch_size", batch)

    def tile_size(self, height: int, width: int) -> int:
        """The tile side for a ``height`` x ``width`` scene (``slice_size``, or the automatic choice)."""
        if self.slice_size is not None:
            return self.slice_size
        side = max(int(height), int(width))
        return max(MIN_SLICE, side) if side <= WHOLE_TILE_MAX else AUTO_SLICE

    def whole_scene_size(self, tile_size: int) -> int:
        """Side in pixels of the downscaled whole-scene pass (0: none)."""
        return tile_size if self.full_image is True else int(self.full_image)

    def with_batch_size(self, default: int) -> "SliceOptions":
        """These options with ``batch_size`` set to ``default`` where it is None."""
        return self if self.batch_size is not None else replace(self, batch_size=default)


@dataclass(frozen=True)
class MergeOptions:
    """How the tiles' detections are merged into instances (SAHI's options; see :mod:`.sliced`).

    ``merge_mode``: GREEDYNMM, NMM or NMS. ``match_metric``: IOU or IOS. ``match_on``: masks or boxes.
    ``match_threshold``: two detections are one object above this IOU/IOS, in [0, 1). Names are case-insensitive
    and kept in their canonical case.
    """

    merge_mode: str = "GREEDYNMM"
    match_metric: str = "IOU"
    match_on: str = "masks"
    match_threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge_mode", _choice("merge_mode", self.merge_mode, MERGE_MODES, upper=True))
        object.__setattr__(self, "match_metric",
                           _choice("match_metric", self.match_metric, MATCH_METRICS, upper=True))
        object.__setattr__(self, "match_on", _choice("match_on", self.match_on, MATCH_ON, upper=False))
        object.__setattr__(self, "match_threshold",
                           _number("match_threshold", self.match_threshold, "a number in [0, 1)"))


SLICE_KEYS = tuple(f.name for f in fields(SliceOptions))
MERGE_KEYS = tuple(f.name for f in fields(MergeOptions))


def with_keywords(slicing: Optional[SliceOptions], merging: Optional[MergeOptions],
                  keywords: Mapping[str, Any]) -> Tuple[SliceOptions, MergeOptions]:
    """``slicing`` and ``merging`` (defaults where None) with single options given by name (``slice_size=256``,
    ``merge_mode="NMS"`` ...) replaced: how the pipeline's methods keep their keyword form."""
    unknown = sorted(set(keywords) - set(SLICE_KEYS) - set(MERGE_KEYS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; slicing and merging options are "
                        f"{', '.join(SLICE_KEYS + MERGE_KEYS)}")
    slice_changes: Dict[str, Any] = {k: v for k, v in keywords.items() if k in SLICE_KEYS}
    merge_changes: Dict[str, Any] = {k: v for k, v in keywords.items() if k in MERGE_KEYS}
    slicing = replace(slicing or SliceOptions(), **slice_changes)
    merging = replace(merging or MergeOptions(), **merge_changes)
    return slicing, merging
