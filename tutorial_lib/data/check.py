"""Step 4: check a COCO instance-segmentation dataset (``Global.mode=check_dataset``).

The parts: :mod:`.validate` finds every problem (:class:`~.validate.Problem` records), :mod:`.analysis` counts and
draws (class histogram, annotated examples through :mod:`tutorial_lib.viz`), :mod:`.report` writes PaddleX's
``{output}/check_dataset_result.json`` and a short summary. This module composes them; converting and re-splitting
before the check (PaddleX's order) is the mode layer's job: :func:`tutorial_lib.modes.prepare_dataset`.

*Errors* mean the dataset cannot be used as it is (``check_pass: false``); *warnings* are reported and the check
still passes. Outputs: the report, ``{output}/check_dataset/histogram.png`` and ``check_dataset/demo_img/``.
"""
import shutil
from pathlib import Path

from ..config import save_config
from ..errors import UserError
from . import analysis
from .report import PASSED_LOG, RESULT_FILE, DatasetReport
from .validate import PROGRESS_MIN_IMAGES, validate_dataset

SAMPLE_HINT = "python -m tutorial_lib sample --output data/remote_sense_sample"


def check_report(dataset_dir, output_dir, num_demo=4, progress=True, extra=None):
    """Check ``dataset_dir``, draw the histogram and demo images under ``output_dir``, write the JSON report and
    return the :class:`~.report.DatasetReport`. Problems in the data never raise: they are in the report."""
    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    validation = validate_dataset(dataset_dir, progress=progress, progress_min_images=PROGRESS_MIN_IMAGES)
    names = validation.names
    stats = [analysis.split_stats(split) for split in validation.splits]
    vis_dir = output_dir / "check_dataset"
    shutil.rmtree(vis_dir / "demo_img", ignore_errors=True)
    (vis_dir / "demo_img").mkdir(parents=True)
    histogram = analysis.save_class_histogram(analysis.class_counts(stats, names), vis_dir / "histogram.png")
    samples = {split.name: [str(p.relative_to(output_dir))
                            for p in analysis.demo_images(split, dataset_dir, vis_dir / "demo_img", num_demo)]
               for split in validation.splits}
    report = DatasetReport(str(dataset_dir), analysis.paddlex_attributes(stats, names, samples),
                           {"histogram": str(histogram.relative_to(output_dir))}, validation.problems,
                           dict(extra or {}), str(output_dir))
    report.write()
    return report


def check_coco_dataset(dataset_dir, output_dir, num_demo=4, progress=True, extra=None):
    """:func:`check_report` as the ``check_dataset_result.json`` dict (``extra`` is merged in at the end)."""
    return check_report(dataset_dir, output_dir, num_demo, progress, extra).to_paddlex_json()


def format_summary(result):
    """The short text summary of a ``check_dataset_result.json`` dict."""
    return DatasetReport.from_json(result).summary()


def dataset_dir_of(cfg):
    """``Global.dataset_dir`` as an existing folder, or a UserError that says how to get data."""
    value = cfg["Global"].get("dataset_dir")
    if not value:
        raise UserError(f"Global.dataset_dir is not set; pass -o Global.dataset_dir=DIR (no data yet? {SAMPLE_HINT})")
    path = Path(value)
    if not path.is_dir():
        raise UserError(f"Global.dataset_dir={value} is not a folder; check the path (no data yet? {SAMPLE_HINT})")
    return path


def check_dataset(cfg, dataset_dir=None, extra=None):
    """``Global.mode=check_dataset``'s check: report on ``dataset_dir`` (default ``Global.dataset_dir``), print the
    summary, and PaddleX's ``Check dataset passed !`` when it passes. Returns the report dict.

    ``tutorial_lib.modes.check_dataset`` converts and splits first and passes the prepared folder and the
    ``convert``/``split`` summaries (``extra``) here.
    """
    dataset_dir = Path(dataset_dir) if dataset_dir is not None else dataset_dir_of(cfg)
    output_dir = Path(cfg["Global"]["output"])
    save_config(cfg, output_dir / "config.yaml")
    report = check_report(dataset_dir, output_dir, extra={"convert": None, "split": None, **(extra or {})})
    print(report.summary())
    if report.check_pass:
        print(PASSED_LOG)
    return report.to_paddlex_json()


__all__ = ["RESULT_FILE", "check_coco_dataset", "check_dataset", "check_report", "dataset_dir_of", "format_summary"]
