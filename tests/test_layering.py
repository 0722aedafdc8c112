"""The package's layers, enforced: a module may import only modules of its own layer or a lower one.

The order is the one ``docs/ARCHITECTURE.md`` states (lowest first). Every ``import`` and ``from ... import`` of
every module counts, function-level ones included, so a lazy import cannot hide an upward dependency. A second rule
keeps deployment light: ``predict``, ``pipeline`` and ``serving`` never import ppdet or the training engine.
"""
import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tutorial_lib"

LAYERS = [
    ("base", ["errors", "paddle_env", "structures"]),
    ("config", ["config"]),
    ("viz", ["viz", "figures"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("engine", ["engine"]),
    ("predict", ["predict"]),
    ("pipeline", ["pipeline"]),
    ("serving", ["serving"]),
    ("app", ["modes", "steps", "quickstart", "providers", "demo", "cli", "bench", "lessons", "widgets", "__init__", "__main__"]),
]
DEPLOYMENT = ("predict", "pipeline", "serving")
TRAINING_STACK = re.compile(r"^(ppdet(\.|$)|tutorial_lib\.engine(\.|$))")


def layer_of(module):
    """``tutorial_lib.engine.train`` -> index of the ``engine`` layer (the first name under the package)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, (_, names) in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its top-level name to LAYERS and docs/ARCHITECTURE.md")


def module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1] if len(parts) > 2 else parts
    return ".".join(parts)


def imports_of(path):
    """Absolute names of everything ``path`` imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else list(package)
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import a, b -> the submodules
                    found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
                    continue
            else:
                target = node.module
            found.append((target, node.lineno))
    return found


def all_modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations(modules=None):
    problems = []
    for path in modules or all_modules():
        name = module_name(path)
        own = layer_of(name)
        for target, line in imports_of(path):
            if target.startswith("tutorial_lib") and target != "tutorial_lib":
                other = layer_of(target)
                if other > own:
                    problems.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[own][0]}) imports {target} "
                                    f"({LAYERS[other][0]}, a higher layer)")
            if LAYERS[own][0] in DEPLOYMENT and TRAINING_STACK.match(target):
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[own][0]}) imports {target}: "
                                "deployment must run without the training stack")
    return problems


def test_no_module_imports_a_higher_layer():
    problems = violations()
    assert not problems, "layering broken:\n" + "\n".join(problems)


def test_every_module_has_a_layer():
    for path in all_modules():
        layer_of(module_name(path))


def test_the_architecture_document_states_this_order():
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    order = re.search(r"```layers\n(.*?)```", text, re.S)
    assert order, "docs/ARCHITECTURE.md needs a ```layers block listing the layer order"
    stated = [line.split(":")[0].strip() for line in order.group(1).strip().splitlines()]
    assert stated == [name for name, _ in LAYERS]


@pytest.mark.parametrize("source, bad", [
    ("from ..models.registry import MODELS\n", "config/probe.py"),       # config -> models
    ("from ..engine import train\n", "pipeline/probe.py"),               # pipeline -> engine
    ("from ..modes import run\n", "pipeline/probe.py"),                  # pipeline -> app
    ("def f():\n    import ppdet\n", "predict/probe.py"),                # deployment -> ppdet, even lazily
])
def test_a_forbidden_import_is_caught(tmp_path, monkeypatch, source, bad):
    """The checker itself can fail: a probe module with a forbidden import is reported."""
    fake = tmp_path / "tutorial_lib"
    target = fake / bad
    target.parent.mkdir(parents=True)
    target.write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert violations([target]), f"{bad}: {source!r} was not caught"


def test_every_adapter_implements_the_written_contract():
    """Each registered adapter subclasses models.base.ModelAdapter with nothing abstract left, so the engine calls
    its methods without probing (no getattr/hasattr on adapters anywhere in the package)."""
    import inspect

    from tutorial_lib.models.adapters import ADAPTERS, adapter_class
    from tutorial_lib.models.base import ModelAdapter

    for name in ADAPTERS:
        cls = adapter_class(name)
        assert issubclass(cls, ModelAdapter) and not inspect.isabstract(cls), name
        assert cls.name == name
    probes = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py")
              for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"(getattr|hasattr)\((self\.)?adapter\b", line)]
    assert not probes, probes


def import_cycles(modules=None):
    """Cycles of imports (function-level ones included) among the modules of one package, e.g. ``predict/a.py``
    importing ``predict/b.py`` which imports ``predict/a.py``; each as a list of module names."""
    paths = {module_name(p): p for p in (modules or all_modules())}

    def package(name):
        return name if paths[name].name == "__init__.py" else name.rsplit(".", 1)[0]

    graph = {}
    for name, path in paths.items():
        edges = set()
        for target, _ in imports_of(path):
            while target and target not in paths:  # `from .x import f`: the module x; `from . import f`: the package
                target = target.rpartition(".")[0]
            if target and target != name and package(target) == package(name):
                edges.add(target)
        graph[name] = edges
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycle_inside_a_package():
    cycles = import_cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_an_import_cycle_is_caught(tmp_path, monkeypatch):
    fake = tmp_path / "tutorial_lib" / "predict"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from .b import g\n")
    (fake / "b.py").write_text("def g():\n    from .a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "tutorial_lib")
    assert import_cycles(sorted(fake.glob("*.py"))) == [["tutorial_lib.predict.a", "tutorial_lib.predict.b",
                                                         "tutorial_lib.predict.a"]]
