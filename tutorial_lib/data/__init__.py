"""Step 4, data: the synthetic sample, dataset checks, conversion, splitting and download.

``sample`` (generated dataset), ``check`` (``Global.mode=check_dataset``, composing ``validate`` -> Problem
records, ``analysis`` -> counts, class histogram and demo images, ``report`` -> PaddleX's JSON and a summary),
``convert`` (LabelMe/VOC -> COCO), ``split`` (re-split train/val, undoable), ``download`` (resumable download, safe
extraction), ``geochips`` (GeoTIFF scenes + polygon labels -> COCO chips, over ``raster``, ``geovector``,
``geolabels`` and ``geosplit``). Submodules are imported where used, so that ``import tutorial_lib`` stays light.
"""
