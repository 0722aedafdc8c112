"""Strict image decoding: a truncated file is an error, whatever other libraries set process-wide."""
import contextlib

from PIL import ImageFile


@contextlib.contextmanager
def strict_decoding():
    """PIL refuses truncated images inside this block (paddledet's trainer turns tolerance on globally)."""
    tolerant = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant
