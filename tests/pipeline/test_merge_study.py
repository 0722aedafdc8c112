"""compare_merge_modes on a small generated scene with the oracle tile predictor: every error is the merge's.

The 1024 px scene of make_geoscene (seed 0) has a few objects that the seams of the 512 px / 0.2 grid run
through. The oracle returns each tile's ground truth, so the default merge must give the labels back (nothing
split, nothing twice), while the tiles' detections as predicted (NO_MERGE) leave seam-crossing objects in pieces
and repeat what two tiles' overlap shows. Each tile is predicted once however many settings run.
"""
import numpy as np
import pytest

from tutorial_lib.data.geoscene import make_geoscene
from tutorial_lib.errors import UserError
from tutorial_lib.pipeline.merge_study import (COLUMNS, DEFAULT_MERGE, NO_MERGE, SAHI_MERGE, compare_merge_modes,
                                               oracle_predictor, setting_name)
from tutorial_lib.pipeline.options import SliceOptions

SLICING = SliceOptions(512, 0.2)
NMS = ("NMS", "IOU", "masks")
SETTINGS = [NO_MERGE, DEFAULT_MERGE, NMS, SAHI_MERGE]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge_study")
    scene = make_geoscene(root / "scene", seed=0, size=1024)
    oracle = oracle_predictor(scene.raster, scene.labels, SLICING)
    found = compare_merge_modes(scene.raster, scene.labels, oracle, modes=SETTINGS, slicing=SLICING,
                                output_dir=root / "merged")
    return found, oracle, scene


def test_one_row_per_setting_and_each_tile_predicted_once(study):
    found, oracle, scene = study
    assert list(found.table.columns) == COLUMNS
    assert len(found.table) == len(SETTINGS) and found.settings == SETTINGS
    assert list(found.table["merge"]) == ["none (tiles as predicted)", "GREEDYNMM", "NMS", "GREEDYNMM"]
    with_data = len(oracle.tiles)  # the grid's tiles that hold data (all no-data tiles are never predicted)
    assert 0 < with_data <= len(found.windows) == len(found.grid.tiles)
    assert oracle.calls == found.tiles_predicted == with_data  # once per tile, not once per tile and setting
    assert all(path.is_file() for path in found.paths.values())


def test_the_default_merge_gives_the_labels_back_and_no_merge_does_not(study):
    found, _, scene = study
    default, none = found.reports[DEFAULT_MERGE], found.reports[NO_MERGE]
    assert default.seam_crossing == scene.seam_crossing > 0
    assert default.seam_split == 0 and default.seam_split_rate == 0.0
    assert default.duplicates == 0 and default.duplicate_rate == 0.0
    assert default.predictions == default.ground_truth and default.f1 == 1.0
    # the tiles as predicted: pieces of seam-crossing objects, and what two tiles' overlap shows counted twice
    assert none.seam_split > 0 and none.duplicates > 0 and none.predictions > default.predictions
    assert none.f1 < default.f1 and none.ap < default.ap
    row = found.table.iloc[1]
    assert (row["seam-split"], row["duplicates"], row["objects crossing seams"]) == (0, 0, scene.seam_crossing)


def test_nms_keeps_one_piece_of_an_object_larger_than_the_overlap(tmp_path, study):
    """With 10 % overlap (26 px of a 256 px tile) no tile holds a large cut object whole: NMS keeps its best piece
    alone (less AP), the default unites the pieces."""
    _, _, scene = study
    slicing = SliceOptions(256, 0.1)
    oracle = oracle_predictor(scene.raster, scene.labels, slicing)
    found = compare_merge_modes(scene.raster, scene.labels, oracle, modes=[DEFAULT_MERGE, NMS], slicing=slicing,
                                output_dir=tmp_path)
    default, nms = found.reports[DEFAULT_MERGE], found.reports[NMS]
    assert default.seam_split == nms.seam_split == 0 and nms.predictions == default.predictions
    assert nms.ap < default.ap


def test_seam_view_and_its_figure(study):
    from matplotlib.figure import Figure

    import tutorial_lib as tl

    found, _, _ = study
    view = found.seam_view([NO_MERGE, DEFAULT_MERGE, "NMS · IOU · masks"], side=384)
    x0, y0, x1, y1 = view.window
    assert x1 - x0 == y1 - y0 == 384 and view.image.shape == (384, 384, 3) and view.image.dtype == np.uint8
    names = [setting_name(s) for s in (NO_MERGE, DEFAULT_MERGE, NMS)]
    assert list(view.merged) == names and view.tiles and view.truth
    assert view.counts["no merge"]["objects crossing seams"] > 0  # the window holds seam-crossing objects
    assert view.counts["no merge"]["split"] > 0 and view.counts[names[1]]["split"] == 0
    assert view.counts[names[1]]["duplicates"] == 0
    fig = tl.plot_seam_zoom(view)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax, name in zip(fig.axes, names):
        c = view.counts[name]
        assert ax.get_title().startswith(name)
        assert f"{c['split']} of {c['objects crossing seams']}" in ax.get_title()
        assert f"{c['duplicates']} duplicates" in ax.get_title()


def test_bad_settings_are_user_errors(study, tmp_path):
    found, oracle, scene = study
    with pytest.raises(UserError, match="merge_mode"):
        compare_merge_modes(scene.raster, scene.labels, oracle, modes=[("WBF", "IOU", "masks")], slicing=SLICING,
                            output_dir=tmp_path)
    with pytest.raises(UserError, match="no setting"):
        found.seam_view(["NMM · IOU · masks"])
    with pytest.raises(UserError, match="fixed tile grid"):
        oracle_predictor(scene.raster, scene.labels, SliceOptions(None))
