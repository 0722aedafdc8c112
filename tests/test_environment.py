"""The three install files agree: environment.yml (GPU) installs every runtime dependency requirements.txt (tested
CPU pins) and pyproject.toml declare, with paddlepaddle-gpu in place of the CPU paddle, and the GPU steps in
environment.yml's header and the README install paddledet with --no-deps and the project with its dependencies.
.ci/env_check.sh builds that environment (CPU paddle substituted) in CI."""
import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PADDLE, PADDLE_GPU = "paddlepaddle", "paddlepaddle-gpu"
# Imported inside a try that says what to install: optional features, not runtime dependencies.
OPTIONAL_IMPORTS = {"pyogrio"}


def requirements_txt():
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]


def environment_yml():
    text = (REPO / "environment.yml").read_text(encoding="utf-8")
    env = yaml.safe_load(text)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return text, env, [Requirement(r) for r in pip]


def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def by_name(requirements):
    found = {}
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name not in found, f"{req.name} is listed twice"
        found[name] = req
    return found


def pinned(req):
    """The exact version of an ``==`` pin."""
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"{req} is not pinned with =="
    return Version(specs[0].version)


def test_environment_yml_has_every_requirements_txt_pin_with_the_gpu_paddle():
    env = by_name(environment_yml()[2])
    reqs = by_name(requirements_txt())
    assert PADDLE not in env, "environment.yml must not install the CPU paddlepaddle (it replaces paddlepaddle-gpu)"
    assert str(env[PADDLE_GPU].specifier) == "==2.6.2"
    assert pinned(env[PADDLE_GPU]) == pinned(reqs[PADDLE])
    for name, req in reqs.items():
        if name == PADDLE:
            continue
        assert name in env, f"environment.yml lacks {req} (requirements.txt)"
        assert env[name].specifier == req.specifier, f"{name}: {env[name]} in environment.yml, {req} in requirements"
    assert set(env) == set(reqs) - {PADDLE} | {PADDLE_GPU}, "environment.yml installs more than requirements.txt"


def test_environment_yml_satisfies_pyproject():
    project = pyproject()
    env = by_name(environment_yml()[2])
    declared = [Requirement(r) for r in project["dependencies"]]
    extras = project["optional-dependencies"]
    declared += [Requirement(r) for name in ("notebooks", "dev") for r in extras[name]]
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in env, f"environment.yml lacks {req} (pyproject.toml)"
        assert pinned(env[name]) in req.specifier, f"environment.yml pins {env[name]}, pyproject.toml wants {req}"
    # A hard paddle dependency would install the CPU wheel over paddlepaddle-gpu (same `paddle` package): extras only.
    assert not {canonicalize_name(r.name) for r in declared} & {PADDLE, PADDLE_GPU}
    assert pinned(env[PADDLE_GPU]) in Requirement(extras["gpu"][0]).specifier
    assert Requirement(extras["gpu"][0]).name == PADDLE_GPU and Requirement(extras["cpu"][0]).name == PADDLE
    assert pinned(by_name(requirements_txt())[PADDLE]) in Requirement(extras["cpu"][0]).specifier
    python = next(d for d in environment_yml()[1]["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Version(python.split("=")[1]) in Requirement("python" + project["requires-python"]).specifier


def gpu_steps(text):
    """The ``pip install`` commands of a text (environment.yml's header, the README's GPU section)."""
    return [" ".join(m.group(1).split()) for m in re.finditer(r"(pip install [^#`&\n]+)", text)]


def test_gpu_steps_install_paddledet_without_deps_and_the_project_with_them():
    header = environment_yml()[0].split("\nname:")[0]
    assert "conda env create -f environment.yml" in header
    steps = gpu_steps(header)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    paddledet = re.search(r"--no-deps (paddledet==[\d.]+)", makefile).group(1)
    assert steps == [f"pip install --no-deps {paddledet}", "pip install -e ."]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## CPU and GPU", 1)[1].split("\n## ", 1)[0]
    gpu = section[section.index("**GPU"):]
    assert "conda env create -f environment.yml" in gpu and "Global.device=gpu:0" in gpu
    assert gpu_steps(gpu)[:2] == steps  # the README runs the same commands, in the same order
    run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^[^#\n]*bash \.ci/env_check\.sh", run, re.M), ".ci/run must call .ci/env_check.sh"


def third_party_imports():
    """Top-level names of every module ``tutorial_lib`` imports that is neither stdlib nor the package itself."""
    names = set()
    for path in (REPO / "tutorial_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "tutorial_lib"} - OPTIONAL_IMPORTS


def closure(names):
    """``names`` and every distribution they require, transitively (installed metadata; extras not taken)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def test_every_imported_distribution_is_installed_by_environment_yml():
    env = closure(set(by_name(environment_yml()[2])) - {PADDLE_GPU})  # metadata of the installed (CPU) build
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(third_party_imports()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"tutorial_lib imports {module}, which no installed distribution provides"
        if dists & {PADDLE, PADDLE_GPU}:
            continue  # paddlepaddle-gpu in environment.yml
        if dists == {"paddledet"}:
            continue  # installed with --no-deps by the header's steps (test above)
        if not dists & env:
            missing.append(f"{module} ({', '.join(sorted(dists))})")
    assert not missing, "environment.yml installs neither these nor a package that requires them: " + "; ".join(missing)


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_extras_name_a_paddle_build(kind):
    extra = Requirement(pyproject()["optional-dependencies"][kind][0])
    assert extra.name == {"cpu": PADDLE, "gpu": PADDLE_GPU}[kind] and Version("2.6.2") in extra.specifier
