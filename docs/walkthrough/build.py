"""Build the executed walkthrough of the tutorial: ``make walkthrough`` (execute + site), ``make walkthrough-site``.

Executes notebooks/01..07 in order with the reader's parameters (papermill; the defaults of each parameters cell,
so 05's model is the one 06 and 07 use), then for each notebook:

- keeps the executed copy, with its outputs and widget state, in ``docs/walkthrough/NN_name.ipynb``;
- re-encodes large PNG outputs as JPEG (and fails if the folder grows past 15 MB);
- records in the copy's metadata (``walkthrough``) the sha256 of the source notebook's cells, the parameters,
  the wall time and the machine's CPU count, so that ``tests/test_walkthrough.py`` can tell a stale copy;
- writes the measured time into the source notebook's first cell (its ``**Time:** full run ...;`` line).

Then renders every copy to HTML (nbconvert, lab template) with an index page, in ``output/walkthrough_site/``.

    python docs/walkthrough/build.py                    # all, CPU defaults
    python docs/walkthrough/build.py --device gpu:0     # the GPU defaults (Mask-RT-DETR-H)
    python docs/walkthrough/build.py --only 01 04       # some notebooks (the others' copies stay)
    python docs/walkthrough/build.py --site-only        # render the committed copies only
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
WALKTHROUGH = REPO / "docs" / "walkthrough"
SITE = REPO / "output" / "walkthrough_site"
MAX_BYTES = 15 * 2 ** 20
PNG_TO_JPEG_BYTES = 60_000  # PNG outputs above this are re-encoded as JPEG
TIME_LINE = re.compile(r"(\*\*Time:\*\* )full run [^;]*;")


def source_hash(notebook):
    """sha256 over the type, tags and source of every cell of ``notebook`` (a path or a dict); outputs and other
    metadata do not count, so only an edit of the lesson itself makes a walkthrough copy stale."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if not isinstance(notebook, dict) else notebook
    digest = hashlib.sha256()
    for cell in nb["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        tags = ",".join(cell.get("metadata", {}).get("tags", []))
        digest.update(f"{cell['cell_type']}\0{tags}\0{source}\0".encode())
    return digest.hexdigest()


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def stamp_time(notebook, seconds, cpus):
    """Write the measured full-run time into the source notebook's first cell; return True if it changed."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    source = nb.cells[0].source
    stamped = TIME_LINE.sub(lambda m: f"{m.group(1)}full run {_duration(seconds)} ({datetime.date.today()}, "
                                      f"{cpus} CPU cores);", source, count=1)
    if stamped == source:
        return False
    nb.cells[0].source = stamped
    nbformat.write(nb, str(notebook))
    return True


def repo_relative(nb):
    """Every mention of this checkout's absolute path in ``nb`` (outputs, papermill's input/output paths) made
    relative to the repository, and of the home folder written ``~``, so the web copy names no folder of the
    machine that built it."""
    import json

    import nbformat

    text = json.dumps(nb)
    for absolute, shown in ((str(REPO) + "/", ""), (str(Path.home()) + "/", "~/")):
        text = text.replace(absolute, shown).replace(json.dumps(absolute)[1:-1], shown)
    return nbformat.from_dict(json.loads(text))


def compress_outputs(nb):
    """Re-encode large PNG outputs as JPEG (quality 80); return the bytes saved."""
    import cv2
    import numpy as np

    saved = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            png = data.get("image/png")
            if not png or len(png) < PNG_TO_JPEG_BYTES:
                continue
            raw = base64.b64decode(png)
            image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok and len(jpeg) < len(raw):
                del data["image/png"]
                data["image/jpeg"] = base64.b64encode(jpeg.tobytes()).decode("ascii")
                saved += len(raw) - len(jpeg)
    return saved


def execute(name, params, kernel="python3"):
    import nbformat
    import papermill as pm

    source = NOTEBOOKS / name
    target = WALKTHROUGH / name
    start = time.perf_counter()
    pm.execute_notebook(str(source), str(target), parameters=params, kernel_name=kernel, cwd=str(NOTEBOOKS),
                        progress_bar=False, request_save_on_cell_execute=False)
    seconds = time.perf_counter() - start
    cpus = os.cpu_count()
    stamp_time(source, seconds, cpus)
    nb = nbformat.read(str(target), as_version=4)
    nb.cells[0].source = nbformat.read(str(source), as_version=4).cells[0].source
    compress_outputs(nb)
    nb = repo_relative(nb)
    nb.metadata["walkthrough"] = {"source": f"notebooks/{name}", "source_hash": source_hash(source),
                                  "parameters": params, "seconds": round(seconds, 1), "cpus": cpus,
                                  "executed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    nbformat.write(nb, str(target))
    print(f"{name}: {_duration(seconds)}", flush=True)
    return seconds


def static_copy(nb):
    """``nb`` for a static page: each output that has a picture besides its widget view keeps the picture only
    (the widget would need scripts from a CDN), the widget state and the test records are dropped."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if "outputs" in cell:  # nothing to show: the Checks cell's records, widgets without a picture (progress bars)
            cell.outputs = [o for o in cell.outputs if not (
                all(k.startswith("application/scrapbook") for k in o.get("data", {"text/plain": 0}))
                or set(o.get("data", {})) == {"application/vnd.jupyter.widget-view+json", "text/plain"})]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data and ({"image/png", "image/jpeg"} & set(data)):
                del data["application/vnd.jupyter.widget-view+json"]
    nb.metadata.pop("widgets", None)
    return nb


def render_site():
    import nbformat
    from nbconvert import HTMLExporter

    SITE.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    links = []
    for path in sorted(WALKTHROUGH.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        body, _ = exporter.from_notebook_node(static_copy(nb))
        (SITE / f"{path.stem}.html").write_text(body, encoding="utf-8")
        title = next((line.lstrip("# ").strip() for line in nb.cells[0].source.splitlines() if line.startswith("#")),
                     path.stem)
        info = nb.metadata.get("walkthrough", {})
        links.append(f'<li><a href="{path.stem}.html">{title}</a> <small>({_duration(info.get("seconds", 0))}, '
                     f'executed {info.get("executed", "?")})</small></li>')
    (SITE / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Remote-sensing instance segmentation: the "
        "walkthrough</title></head><body><h1>The tutorial, executed</h1><p>Each step run top to bottom with the "
        "reader's parameters by <code>make walkthrough</code>.</p><ol>" + "".join(links) + "</ol></body></html>\n",
        encoding="utf-8")
    print(f"site: {SITE / 'index.html'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="the notebooks' device parameter (default: their own, cpu)")
    parser.add_argument("--model", default=None, help="model for 05, 06 and 07 (default: theirs for the device)")
    parser.add_argument("--only", nargs="*", default=None, help="notebook numbers to execute, e.g. 01 04")
    parser.add_argument("--site-only", action="store_true", help="only render output/walkthrough_site/")
    args = parser.parse_args(argv)
    if not args.site_only:
        WALKTHROUGH.mkdir(parents=True, exist_ok=True)
        for source in sorted(NOTEBOOKS.glob("*.ipynb")):
            if args.only and source.name[:2] not in args.only:
                continue
            params = {}
            if args.device:
                params["device"] = args.device
            if args.model and source.name[:2] in ("05", "06", "07"):
                params["model"] = args.model
            execute(source.name, params)
        total = sum(p.stat().st_size for p in WALKTHROUGH.rglob("*") if p.is_file())
        print(f"docs/walkthrough/: {total / 2 ** 20:.1f} MB")
        if total > MAX_BYTES:
            sys.exit(f"docs/walkthrough/ holds {total / 2 ** 20:.1f} MB, more than 15 MB: shrink the figures")
    render_site()


if __name__ == "__main__":
    main()
