"""The check's report: PaddleX's ``check_dataset_result.json`` and a short text for people."""
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .problems import BySeverity, Problem
from .validate import SPLITS

RESULT_FILE = "check_dataset_result.json"
PASSED_LOG = "Check dataset passed !"  # PaddleX's log line; users grep for it
NOTES = {"samples": "train_samples/val_samples count annotations (object instances), as PaddleX does; "
                    "train_images/val_images count images"}


def _shorten(text, limit):
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@dataclass
class DatasetReport(BySeverity):
    """Everything the check found about one dataset.

    ``attributes`` and ``analysis`` hold PaddleX's keys (``analysis`` paths are relative to ``output_dir``);
    ``extra`` holds the mode's convert/split summaries, written at the end of the JSON.
    """

    dataset_path: str
    attributes: dict
    analysis: dict
    problems: list = field(default_factory=list)  # Problem records, in the order found
    extra: dict = field(default_factory=dict)
    output_dir: Optional[str] = None

    @property
    def check_pass(self):
        return not self.errors

    @property
    def result_path(self):
        return Path(self.output_dir) / RESULT_FILE if self.output_dir else None

    def to_paddlex_json(self):
        """PaddleX's ``check_dataset_result.json`` schema (``done_flag``, ``check_pass``, ``attributes``,
        ``analysis``, ``dataset_path``, ``show_type``, ``dataset_type``) plus the problem lists and counts."""
        errors, warnings = self.errors, self.warnings
        return {
            "done_flag": True,
            "check_pass": not errors,
            "attributes": self.attributes,
            "analysis": self.analysis,
            "dataset_path": self.dataset_path,
            "show_type": "image",
            "dataset_type": "COCOInstSegDataset",
            "notes": dict(NOTES),
            "problem_counts": {"errors": dict(Counter(p.kind for p in errors)),
                               "warnings": dict(Counter(p.kind for p in warnings))},
            "errors": [p.to_dict() for p in errors],
            "warnings": [p.to_dict() for p in warnings],
            **self.extra,
        }

    @classmethod
    def from_json(cls, result, output_dir=None):
        """A report from a ``check_dataset_result.json`` dict (problems keep their full text as ``message``)."""
        known = {"done_flag", "check_pass", "attributes", "analysis", "dataset_path", "show_type", "dataset_type",
                 "notes", "problem_counts", "errors", "warnings"}
        problems = [Problem(p["kind"], p["file"], p["message"], severity=p["level"])
                    for p in result.get("errors", []) + result.get("warnings", [])]
        return cls(result["dataset_path"], result["attributes"], result["analysis"], problems,
                   {k: v for k, v in result.items() if k not in known}, output_dir)

    def write(self, output_dir=None):
        """Write ``check_dataset_result.json`` (to ``output_dir`` or the report's own) and return its path."""
        if output_dir is not None:
            self.output_dir = str(output_dir)
        path = self.result_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_paddlex_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def summary(self, max_messages=5, max_kinds=8, width=240):
        """A few lines for people: the verdict, the counts, the first problem of each kind (at most
        ``max_messages``), and where the full list is."""
        a = self.attributes
        lines = [f"check_dataset {'PASSED' if self.check_pass else 'FAILED'}: {self.dataset_path} "
                 f"({a['num_classes']} classes)"]
        convert = self.extra.get("convert") or {}
        skipped = convert.get("skipped_shapes")
        if convert.get("src_dataset_type") in ("LabelMe", "VOC"):
            skipped_text = ""
            if skipped:
                skipped_text = f"; {sum(skipped.values())} shape(s) skipped (" + ", ".join(
                    f"{reason} x{n}" for reason, n in skipped.items()) + ")"
            lines.append(f"  converted from {convert['src_dataset_type']} {convert.get('src_dir', '')} to "
                         f"{convert['dataset_dir']}{skipped_text}")
        for split in SPLITS:
            lines.append(f"  {split}: {a[f'{split}_images']} images ({a[f'{split}_background_images']} "
                         f"background-only), {a[f'{split}_annotations']} annotations")
        shown = 0
        for level, problems in (("errors", self.errors), ("warnings", self.warnings)):
            counts = Counter(p.kind for p in problems)
            kinds = [f"{kind} x{n}" for kind, n in counts.items()]
            more_kinds = f", and {len(kinds) - max_kinds} more kinds" if len(kinds) > max_kinds else ""
            lines.append(f"  {len(problems)} {level}" + (": " + ", ".join(kinds[:max_kinds]) + more_kinds
                                                         if kinds else ""))
            for kind in counts:
                if shown >= max_messages:
                    break
                first = next(p for p in problems if p.kind == kind)
                lines.append(f"    - {_shorten(first.text, width)}")
                shown += 1
        hidden = len(self.problems) - shown
        where = self.result_path or RESULT_FILE
        if self.problems:
            lines.append(f"  {f'{hidden} more not shown; ' if hidden else ''}full list ({len(self.problems)} "
                         f"problem(s), each with its fix): {where}")
        else:
            lines.append(f"  report: {where}")
        return "\n".join(lines)
