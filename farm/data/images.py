"""Image folders (one sub-folder per class), decoded once to uint8 and cached.

Every GAN trial reuses the same small arrays (FIDS30 at 64x64 is about 12 MB), so the
folder is decoded once per (files, size) and kept as one ``.npz`` in a cache folder.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from farm.infra.atomic import replacing_folder
from farm.infra.errors import DataError
from farm.infra.progress import milestone

# Bump whenever the preprocessing changes, so that old caches are not reused.
LOADER_VERSION = 1
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
MIN_SIZE = 8


def to_unit_range(images: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 NHWC images -> a float32 NCHW tensor in [-1, 1] (x / 127.5 - 1) on `device`, the
    range a tanh generator produces. A writable copy; the bytes travel before the floats."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).to(device)
    return x.permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0).contiguous()


def label_tensor(labels: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """Class indices as a tensor on `device`, copied: arrays that arrive through Ray's object
    store are read-only, and torch warns every process that shares one."""
    return torch.tensor(np.asarray(labels), device=device)


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays cannot be compared or hashed as a whole
class ImageSet:
    """Decoded images of a class-per-folder dataset, all the same square size."""

    images: np.ndarray  # uint8 [N, size, size, 3]
    labels: np.ndarray  # int64 [N], index into classes
    classes: tuple[str, ...]
    files: tuple[str, ...]  # paths relative to the root, "class/name.jpg"

    def __len__(self) -> int:
        return len(self.images)

    def to_tensor(self, index=None) -> torch.Tensor:
        """Float32 NCHW in [-1, 1] (x / 127.5 - 1), the range a tanh generator produces.

        ``index`` is anything numpy accepts (int, slice, index array, mask); a single int
        still gives a batch of one, so the result is always 4-D.
        """
        batch = self.images if index is None else self.images[index]
        return to_unit_range(batch[None] if batch.ndim == 3 else batch)

    def class_indices(self, label: int | str) -> np.ndarray:
        """Indices of the images of one class (given by number or by folder name)."""
        if isinstance(label, str):
            if label not in self.classes:
                raise DataError(f"no class named {label!r}; classes are {', '.join(self.classes)}")
            label = self.classes.index(label)
        return np.flatnonzero(self.labels == label)


def load_image_folder(
    root: str | os.PathLike, size: int = 64, cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> ImageSet:
    """Load ``root/<class>/<image>`` as ``size``x``size`` RGB, from the cache when it is current."""
    root = Path(root)
    size = _check_size(size, root)
    classes, files = scan_image_folder(root)
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"images-{size}px-{cache_key(root, files, size)}.npz"
        cached = _read_cache(cache_path, classes, files, size)
        if cached is not None:
            _say(progress, f"loaded {len(files)} images from cache {cache_path}")
            return cached
    images = _decode_all(root, files, size, progress)
    labels = np.array([classes.index(f.split("/", 1)[0]) for f in files], dtype=np.int64)
    result = ImageSet(images=images, labels=labels, classes=classes, files=files)
    if cache_path is not None:
        _write_cache(cache_path, result)
    return result


def _check_size(size, root: Path) -> int:
    """Reject sizes too small to hold an image worth training on (and non-integers)."""
    try:
        size = operator.index(size)
    except TypeError:
        raise DataError(f"image size must be an integer, got {size!r}", where=root) from None
    if size < MIN_SIZE:
        raise DataError(f"image size must be at least {MIN_SIZE}, got {size}", where=root)
    return size


def scan_image_folder(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Class names (sorted sub-folders) and image paths relative to root, in load order."""
    if not root.exists():
        raise DataError("image folder does not exist", where=root)
    if not root.is_dir():
        raise DataError("not a folder (expected one sub-folder of images per class)", where=root)
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not _hidden(p)))
    if not classes:
        raise DataError("no class sub-folders (expected one sub-folder of images per class)",
                        where=root)
    files = []
    for name in classes:
        images = sorted(p.name for p in (root / name).iterdir() if _is_image_file(p))
        if not images:
            raise DataError(f"empty class folder (no {'/'.join(sorted(IMAGE_EXTENSIONS))} files)",
                            where=root / name)
        files.extend(f"{name}/{image}" for image in images)
    return classes, tuple(files)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(path) and path.is_file()


def cache_key(root: Path, files: tuple[str, ...], size: int) -> str:
    """sha256 of everything that decides the arrays: loader version, size, each file's stat."""
    entries = []
    for rel in files:
        stat = (root / rel).stat()
        entries.append([rel, stat.st_size, stat.st_mtime_ns])
    blob = json.dumps([LOADER_VERSION, size, entries], separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _decode_all(root: Path, files: tuple[str, ...], size: int, progress: bool) -> np.ndarray:
    """Decode every file into one preallocated array, saying so at each quarter."""
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, rel in enumerate(files):
        images[i] = decode_image(root / rel, size)
        done = i + 1
        if milestone(done, len(files)):
            _say(progress, f"decoded {done}/{len(files)} images")
    return images


def decode_image(path: Path, size: int) -> np.ndarray:
    """One file -> uint8 [size, size, 3]; any decode failure is the file's fault: DataError."""
    try:
        with Image.open(path) as im:
            im.seek(0)  # first frame of GIF/TIFF/MPO
            im.load()  # full decode now, so truncated files fail (LOAD_TRUNCATED_IMAGES is False)
            im = ImageOps.exif_transpose(im)
            im = _to_rgb(im)
            im = _resize_and_crop(im, size)
            return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ...
        reason = _reason(exc).replace(f" {str(path)!r}", "")  # the path is already in `where`
        raise DataError(f"cannot decode image: {reason}", where=path) from exc


def _reason(exc: Exception) -> str:
    """Pillow's message squeezed onto one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparent pixels become white, 16-bit greys are scaled down."""
    if im.mode.startswith("I"):  # I, I;16, I;16B ...: Pillow's convert would clip to 255
        grey = np.asarray(im, dtype=np.float64).clip(0, 65535) / 257.0
        return Image.fromarray(np.rint(grey).astype(np.uint8)).convert("RGB")
    if im.has_transparency_data:  # RGBA, LA, PA, RGBa, La, or a "transparency" colour
        rgba = im.convert("RGBA")  # P/L/RGB with a transparent colour become real alpha
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _resize_and_crop(im: Image.Image, size: int) -> Image.Image:
    """Scale the shorter edge to ``size`` (aspect kept), then cut the centre square."""
    width, height = im.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new != im.size:
        im = im.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return im.crop((left, top, left + size, top + size))


def _read_cache(path: Path, classes, files, size: int) -> ImageSet | None:
    """The cached set if the file is there, readable and matches; otherwise None (rebuild)."""
    if not path.is_file():
        return None
    try:
        # Open it ourselves: np.load leaks its handle when the zip is corrupt.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            result = ImageSet(images=npz["images"], labels=npz["labels"],
                              classes=tuple(npz["classes"].tolist()),
                              files=tuple(npz["files"].tolist()))
    except Exception:  # truncated, not a zip, missing keys ...: a cache is only a shortcut
        return None
    matches = (
        result.classes == classes and result.files == files
        and result.images.dtype == np.uint8 and result.images.shape == (len(files), size, size, 3)
        and result.labels.dtype == np.int64 and result.labels.shape == (len(files),)
    )
    return result if matches else None


def _write_cache(path: Path, result: ImageSet) -> None:
    """Write to a temp file then rename, so parallel trials never see half a cache."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, images=result.images, labels=result.labels,
                     classes=np.array(result.classes, dtype=str),
                     files=np.array(result.files, dtype=str))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other users' trials may share the cache
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise DataError(f"cannot write image cache: {_reason(exc)}", where=path.parent) from exc


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def write_image_folder(by_class: dict, folder: Path, about: dict | None = None,
                       indices: dict | None = None, header: dict | None = None) -> None:
    """ImageFolder layout (<class>/<n>.png) plus a manifest.json naming, for every file, what
    made it (`about`) and its index in the sample (`indices[class][n]` when only some draws
    were kept), after `header` (what the whole folder is); written beside and renamed into
    place whole."""
    with replacing_folder(folder) as staging:
        files = []
        for name, images in by_class.items():
            (staging / name).mkdir()
            for i, image in enumerate(images):
                Image.fromarray(image).save(staging / name / f"{i:04d}.png")
                index = indices[name][i] if indices else i
                files.append({"file": f"{name}/{i:04d}.png", "class": name, "index": index,
                              **(about or {})})
        (staging / "manifest.json").write_text(json.dumps({**(header or {}), "files": files},
                                                          indent=1))
