"""The scene preview notebook 04 draws before chipping: decimated RGB with its no-data, labels in raster pixels
where the raster shows them, a full-resolution detail of a large scene; and the figure that draws it."""
import numpy as np
import pytest
import shapely

import tutorial_lib as tl
from tutorial_lib.data.geoview import scene_preview


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return tl.make_geoscene(tmp_path_factory.mktemp("geoview"), size=1024)


def test_a_large_scene_is_decimated_with_its_nodata_and_a_detail(scene):
    preview = scene_preview(scene.raster, scene.labels, max_side=256, detail=256)
    assert preview.image.shape == (256, 256, 3) and preview.image.dtype == np.uint8
    assert preview.scale == 0.25 and preview.window == (0, 0, 1024, 1024)
    assert 0 < (~preview.valid).mean() < 0.2 and not preview.image[~preview.valid].any()  # the collar is black
    assert len(preview.objects) == scene.objects and {n for n, _ in preview.objects} == \
        {n for n, k in scene.counts.items() if k}
    assert preview.facts["CRS"] == "EPSG:32650" and preview.facts["label CRS"] == "EPSG:4326"
    assert (preview.facts["bands"], preview.facts["data type"]) == (4, "uint16")
    detail = preview.detail
    col, row, w, h = detail.window
    assert (w, h) == (256, 256) and detail.image.shape == (256, 256, 3) and detail.scale == 1.0
    assert detail.objects and all(shapely.intersects(g, shapely.box(col, row, col + w, row + h))
                                  for _, g in detail.objects)
    bounds = shapely.total_bounds([g for _, g in preview.objects])
    assert bounds[0] >= -1 and bounds[2] <= 1025  # raster pixel coordinates, not map coordinates


def test_a_small_scene_is_shown_whole_without_a_detail(scene):
    preview = scene_preview(scene.raster, scene.labels, max_side=2048)
    assert preview.scale == 1.0 and preview.detail is None and preview.image.shape == (1024, 1024, 3)


def test_the_figure_has_a_panel_per_view_and_a_legend_entry_per_class(scene):
    preview = scene_preview(scene.raster, scene.labels, max_side=256, detail=256)
    fig = tl.plot_geoscene(preview)
    assert len(fig.axes) == 2 and "EPSG:32650" in fig.axes[0].get_title()
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[-1] == "no data" and len(texts) == 1 + len({n for n, _ in preview.objects})
    assert fig._repr_png_()[:4] == b"\x89PNG"
