"""What a dataset check reports: :class:`Problem` records (what, where, why, the fix) and their severities,
collected in a fixed order of stages whatever order a file presents its parts in."""
from dataclasses import dataclass


class BySeverity:
    """``errors`` and ``warnings`` of an object holding ``problems``."""

    @property
    def errors(self):
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self):
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: what (``kind``), where (``file``, ``id``), why and how to fix it."""

    kind: str
    file: str
    message: str  # what is wrong, naming the entry
    fix: str = ""  # what to do about it
    id: object = None  # the image, annotation or category id concerned, if one is
    severity: str = "error"  # or "warning"

    @property
    def text(self):
        return f"{self.message}; {self.fix}" if self.fix else self.message

    def to_dict(self):
        """The entry of ``check_dataset_result.json``'s ``errors``/``warnings`` lists."""
        return {"level": self.severity, "kind": self.kind, "file": self.file, "message": self.text}


# the order problems are reported in, whatever order a file presents its parts in
STAGES = ("file", "entries:images", "entries:annotations", "entries:categories", "index:images", "index:categories",
          "index:annotations", "images", "annotations", "dataset")


class Problems:
    """Problems in the order found within each stage, the stages in :data:`STAGES` order."""

    def __init__(self):
        self._stages = {}

    def add(self, stage, kind, file, message, fix="", id=None, severity="error"):
        self._stages.setdefault(stage, []).append(Problem(kind, str(file), message, fix, id, severity))

    def extend(self, other):
        for stage, items in other._stages.items():
            self._stages.setdefault(stage, []).extend(items)

    @property
    def items(self):
        return [p for stage in STAGES for p in self._stages.get(stage, [])]
