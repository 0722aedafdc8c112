"""Chip windows and the train/val split *by area*.

Neighbouring chips of one scene share roads, roofs, light and often the very objects cut at their borders; split
chip by chip, val would hold near-copies of training chips and its score would flatter the model. So val is made of
whole areas: whole rasters (``split_by="raster"``) or square blocks of ``block_size`` pixels of each raster
(``split_by="blocks"``), drawn with a seeded generator so the same inputs and seed give the same split. A chip
belongs to the block holding its centre; a training chip that overlaps a val chip (chips straddling a block border,
or overlapping chips) is dropped, so no pixel is in both splits.

Rasters are split independently: two rasters covering the same ground (two dates) are not reconciled, so with
``split_by="blocks"`` one date's val block may lie under the other's training chips; split such stacks by raster.
"""
import numpy as np

from ..errors import UserError

SPLIT_BY = ("raster", "blocks")


def chip_windows(width, height, chip_size, overlap):
    """``(col, row, width, height)`` windows covering the raster row by row, ``chip_size`` apart less the overlap;
    the last row and column are shifted to end at the border (no padding), and a raster smaller than a chip is one
    chip of its own size."""
    step = max(1, round(chip_size * (1.0 - overlap)))

    def starts(length):
        if length <= chip_size:
            return [0]
        return sorted(set(range(0, length - chip_size, step)) | {length - chip_size})

    return [(col, row, min(chip_size, width), min(chip_size, height))
            for row in starts(height) for col in starts(width)]


def _units(chips, split_by, block_size):
    """The area unit of each chip: its raster, or (raster, block column, block row) of its centre."""
    if split_by == "raster":
        return [(int(c[0]),) for c in chips]
    return [(int(r), int((col + w / 2) // block_size), int((row + h / 2) // block_size)) for r, col, row, w, h in chips]


def assign_val(chips, split_by, block_size, val_fraction, seed):
    """``(is_val, val_units)``: which chips go to val, and the units drawn for it. ``chips``: int array
    ``(n, 5)`` of raster index, col, row, width, height."""
    units = _units(chips, split_by, block_size)
    present = sorted(set(units))
    if len(present) < 2:
        if split_by == "raster":
            raise UserError("split_by=raster needs 2 or more rasters holding data; with one, use split_by=blocks "
                            "(val = spatial blocks of block_size pixels)")
        raise UserError(f"only one block of block_size={block_size} px holds data, and a split needs two: lower "
                        "block_size (it must stay >= chip_size)")
    n_val = min(max(round(len(present) * val_fraction), 1), len(present) - 1)
    order = np.random.default_rng(seed).permutation(len(present))
    val_units = {present[i] for i in order[:n_val]}
    return np.array([u in val_units for u in units], bool), sorted(val_units)


def drop_cross_split_overlaps(chips, is_val):
    """Bool mask of the chips to keep: every val chip, and the training chips that overlap no val chip."""
    keep = np.ones(len(chips), bool)
    for raster in np.unique(chips[:, 0]):
        here = chips[:, 0] == raster
        val = chips[here & is_val]
        if len(val) == 0:
            continue
        for index in np.flatnonzero(here & ~is_val):
            _, col, row, w, h = chips[index]
            overlaps = ((val[:, 1] < col + w) & (col < val[:, 1] + val[:, 3]) &
                        (val[:, 2] < row + h) & (row < val[:, 2] + val[:, 4]))
            keep[index] = not overlaps.any()
    return keep


__all__ = ["SPLIT_BY", "assign_val", "chip_windows", "drop_cross_split_overlaps"]
