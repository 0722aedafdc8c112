#!/usr/bin/env bash
# The GPU user's install path, checked without a GPU: build a fresh venv from environment.yml's pip part (with
# paddlepaddle-gpu swapped for the CPU paddlepaddle of the same version), run the pip commands environment.yml's
# header tells the user to run after `conda env create` (paddledet --no-deps, then this project WITH its
# dependencies), check that nothing but paddledet's known-broken requirement list conflicts, and import every
# module of tutorial_lib in that venv.
#
# Quick by default: the new venv sees the distributions `make install` put in .venv (a path entry, read only), so
# pip installs only what environment.yml pins differently from requirements.txt (nothing, while
# tests/test_environment.py holds them equal) plus this project. ENV_CHECK_FRESH=1 builds it from PyPI alone
# (about 10 minutes on 2 cores: pip keeps no wheel cache on these machines).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PARSER=${PARSER:-.venv/bin/python}   # any python with PyYAML; `make install` provides one
work=$(mktemp -d "${TMPDIR:-/tmp}/rs-instseg-envcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS

# environment.yml -> requirements (CPU paddle) + the header's pip commands, one per line.
"$PARSER" - environment.yml "$work/requirements.txt" "$work/steps.txt" <<'EOF'
import re, sys, yaml

path, reqs, steps = sys.argv[1:]
text = open(path, encoding="utf-8").read()
deps = yaml.safe_load(text)["dependencies"]
pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
cpu = [re.sub(r"^paddlepaddle-gpu(?=[=<>!~ ]|$)", "paddlepaddle", r) for r in pip]
assert len(cpu) == len(pip) and any(r.startswith("paddlepaddle==") for r in cpu), "no paddlepaddle-gpu pin"
open(reqs, "w").write("\n".join(cpu) + "\n")
commands = [m.group(1).strip() for m in re.finditer(r"^#\s+(pip install [^#\n]+)", text, re.M)]
assert commands, "environment.yml's header names no pip install command"
open(steps, "w").write("\n".join(commands) + "\n")
EOF

"$PYTHON" -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONNOUSERSITE=1
if [ "${ENV_CHECK_FRESH:-0}" != 1 ] && [ -d .venv ]; then
  base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  here=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$base" > "$here/zz_make_install_venv.pth"   # after the venv's own packages: its installs win
  echo "env-check: reusing the distributions of $base"
fi
python -m pip install --quiet -r "$work/requirements.txt"
echo "env-check: environment.yml pins installed ($((SECONDS - start)) s)"
while IFS= read -r step; do
  echo "env-check: $step"
  # shellcheck disable=SC2086  # the documented command, word-split as a shell would
  python -m $step --quiet
  echo "env-check: done ($((SECONDS - start)) s)"
done < "$work/steps.txt"

# paddledet 2.6.0's metadata asks for numpy<1.24, sklearn, visualdl ...: that is why it goes in with --no-deps.
conflicts=$(python -m pip check 2>&1 | grep -v -i '^paddledet ' | grep -v '^No broken requirements' || true)
if [ -n "$conflicts" ]; then
  echo "env-check: conflicting requirements in the environment.yml environment:"; echo "$conflicts"; exit 1
fi

python - <<'EOF'
import importlib, os, pkgutil, sys

os.environ.setdefault("OMP_NUM_THREADS", "2")
import tutorial_lib

names = [m.name for m in pkgutil.walk_packages(tutorial_lib.__path__, "tutorial_lib.")
         if m.name != "tutorial_lib.__main__"]
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # report every module that does not import, not just the first
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
import paddle

print(f"env-check: {len(names)} modules of tutorial_lib import with {paddle.__version__} "
      f"from {os.path.dirname(tutorial_lib.__file__)}")
if failed:
    print("env-check: modules that do not import:\n  " + "\n  ".join(failed))
    sys.exit(1)
EOF
echo "env-check: passed in $((SECONDS - start)) s"
