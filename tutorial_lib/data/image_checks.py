"""The image half of a dataset check: where an entry's file is, and whether it decodes whole at the size and
orientation the annotation file says (checked in a thread pool; JPEGs entropy-decoded at 1/8 scale, PNG chunk CRCs
verified up to ``IEND``)."""
from pathlib import PurePosixPath

from PIL import Image
from tqdm.auto import tqdm

def image_path(dataset_dir, file_name):
    """``dataset_dir/images/file_name``, or None for names that leave images/."""
    relative = PurePosixPath(file_name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return None
    return dataset_dir / "images" / relative


EXIF_ORIENTATION = 0x0112
ORIENTATIONS = {2: "mirrored", 3: "rotated 180°", 4: "flipped upside down", 5: "mirrored and rotated 90°",
                6: "rotated 90° clockwise", 7: "mirrored and rotated 90°", 8: "rotated 90° counter-clockwise"}


def probe_image(path):
    """``((width, height), orientation, None)`` if the file is complete, else ``(None, None, reason)``.

    The size is the one OpenCV decodes -- what training (paddledet's ``Decode``) and prediction see: with an
    EXIF orientation tag (5 to 8) OpenCV turns the image by 90°, so width and height swap. Call inside
    :func:`strict_decoding`. Checking completeness needs no full-resolution decode: a JPEG's entropy-coded data is
    decoded whole at 1/8 scale, a PNG's chunks are CRC-checked up to IEND.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format == "JPEG":
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
                image.draft("L", (max(1, width // 8), max(1, height // 8)))
                image.load()
            elif image.format == "PNG":
                # getexif() would decode the pixels to find an eXIf chunk after the image data
                orientation = image.getexif().get(EXIF_ORIENTATION, 1) if "exif" in image.info else 1
                image.verify()
            else:
                image.load()
                orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception as exc:  # PIL raises many types for broken files
        return None, None, str(exc) or type(exc).__name__
    orientation = orientation if orientation in ORIENTATIONS else 1
    return ((height, width) if orientation >= 5 else (width, height)), orientation, None


def _probe(path):
    try:
        exists = path.is_file()
    except OSError:  # e.g. a name too long for the file system: no such file either
        exists = False
    return probe_image(path) if exists else "missing"


def start_image_checks(split, dataset_dir, pool):
    """Queue every image of ``split`` for :func:`probe_image` on ``pool``; the annotations are read meanwhile."""
    split.probes = []
    for img in split.images.values():
        if img["width"] <= 0 or img["height"] <= 0:
            split.probes.append((img, "bad_size"))
            continue
        path = image_path(dataset_dir, img["file_name"])
        split.probes.append((img, "bad_name") if path is None else (img, pool.submit(_probe, path)))


def finish_image_checks(split, problems, progress, progress_min_images):
    """Record the image problems of ``split`` in image order, as the probes finish."""
    rel = split.rel
    bar = tqdm(split.probes, desc=f"checking {split.name} images", unit="img",
               disable=not progress or len(split.images) < progress_min_images)
    for img, probe in bar:
        where = f"{rel}: image id {img['id']} ({img['file_name']})"
        if probe == "bad_size":
            problems.add("images", "wrong_type", rel, f"{where}: width and height must be positive, got "
                                                      f"{img['width']}x{img['height']}", "set the real image size",
                         id=img["id"])
        elif probe == "bad_name":
            problems.add("images", "bad_file_name", rel, f"{where}: file_name must be a path relative to images/ "
                                                         "without '..' or a leading '/'",
                         "move the file into images/ and fix the name", id=img["id"])
        else:
            _image_problems(split, img, where, probe.result(), problems)
    split.probes = []


def _image_problems(split, img, where, probed, problems):
    rel, image_id = split.rel, img["id"]
    if probed == "missing":
        problems.add("images", "missing_image_file", rel, f"{where}: images/{img['file_name']} does not exist",
                     "copy the image into images/ or remove the image and its annotations", id=image_id)
        return
    size, orientation, reason = probed
    if size is None:
        problems.add("images", "unreadable_image", rel, f"{where}: images/{img['file_name']} cannot be decoded "
                                                        f"({reason})",
                     "re-export the image or remove it from the JSON", id=image_id)
    elif size != (img["width"], img["height"]):
        turned = f" once its EXIF orientation ({ORIENTATIONS.get(orientation)}) is applied, as OpenCV does in " \
                 "training and prediction," if orientation != 1 else ""
        fix = ("save the image with the rotation applied and no orientation tag (PIL.ImageOps.exif_transpose) "
               "and check that its annotations were drawn on that view" if orientation != 1 else
               "set width/height to the real size or restore the image")
        problems.add("images", "image_size_mismatch", rel,
                     f"{where}: the file is {size[0]}x{size[1]} (width x height){turned} but the JSON says "
                     f"{img['width']}x{img['height']}", fix, id=image_id)
    else:
        split.readable.add(image_id)
        if orientation != 1:
            problems.add("images", "exif_orientation", rel,
                         f"{where}: the file carries EXIF orientation {orientation} ({ORIENTATIONS[orientation]}); "
                         "training and prediction see it turned that way",
                         "make sure the annotations were drawn on the turned view, or save the image with the "
                         "rotation applied and no tag (PIL.ImageOps.exif_transpose)", id=image_id, severity="warning")
