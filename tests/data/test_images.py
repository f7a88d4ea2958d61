"""Tests for farm.data.images: folder scanning, per-image preprocessing, errors and the cache."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from farm.data import images as images_mod
from farm.data.images import ImageSet, label_tensor, load_image_folder, to_unit_range
from farm.infra.errors import DataError

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def solid(colour, size=(24, 24), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def make_folder(root: Path, files: dict[str, Image.Image | bytes], **save_kw) -> Path:
    """Write ``{"class/name.ext": image or raw bytes}`` under root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content.save(path, **save_kw.get(rel, {}))
    return root


def load_one(tmp_path: Path, name: str, image: Image.Image, size=32, **save_kw) -> np.ndarray:
    """Load a single-image folder and return that image as uint8 [size, size, 3]."""
    root = make_folder(tmp_path / "root", {f"c/{name}": image}, **{f"c/{name}": save_kw})
    result = load_image_folder(root, size=size)
    assert result.images.shape == (1, size, size, 3) and result.images.dtype == np.uint8
    return result.images[0].astype(int)


def assert_colour(pixels: np.ndarray, colour, tol=40):
    """Every pixel in the region is within ``tol`` of ``colour`` on every channel."""
    diff = np.abs(pixels.reshape(-1, 3) - np.array(colour)).max()
    assert diff <= tol, f"max channel difference {diff} from {colour}"


def expect_data_error(root, match_path: Path, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        load_image_folder(root, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{match_path}: "), message
    return info.value


# --- the real dataset -------------------------------------------------------------------------


def test_fids30_loads(shared_data):
    result = load_image_folder(shared_data / "fids30", size=64)
    assert result.images.shape == (961, 64, 64, 3)
    assert result.images.dtype == np.uint8
    assert result.labels.dtype == np.int64 and result.labels.shape == (961,)
    assert len(result.classes) == 30 and result.classes[0] == "acerolas"
    assert result.classes == tuple(sorted(result.classes))
    assert len(result.files) == 961 and result.files[0].startswith("acerolas/")
    assert all(f.endswith(".jpg") for f in result.files)  # links.txt, SOURCE.md ... ignored
    assert len(result.class_indices("bananas")) == 42
    assert len(result.class_indices(result.classes.index("tomatoes"))) == 46
    assert np.bincount(result.labels).min() == 22  # passionfruit
    assert 40 < result.images.mean() < 215  # real photos, not blank


# --- scanning ---------------------------------------------------------------------------------


def test_classes_sorted_and_non_images_ignored(tmp_path):
    root = make_folder(tmp_path / "root", {
        "zebra/b.PNG": solid(RED), "zebra/a.jpeg": solid(GREEN), "apple/x.bmp": solid(BLUE),
        "apple/.hidden.png": solid(RED), ".hidden_class/y.png": solid(RED),
        "apple/nested/z.png": solid(RED),
    })
    (root / "apple" / "links.txt").write_text("not an image")
    (root / "README.md").write_text("top-level files are not classes")
    result = load_image_folder(root, size=8)
    assert result.classes == ("apple", "zebra")
    assert result.files == ("apple/x.bmp", "zebra/a.jpeg", "zebra/b.PNG")
    assert result.labels.tolist() == [0, 1, 1]
    assert result.class_indices("zebra").tolist() == [1, 2]
    assert result.class_indices(0).tolist() == [0]
    with pytest.raises(DataError):
        result.class_indices("pear")


# --- preprocessing ----------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), RED)
    img.paste(BLUE, (40, 0, 80, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left (red) half ends up on top
    out = load_one(tmp_path, "rot.jpg", img, size=32, exif=exif, quality=95)
    assert_colour(out[:10], RED, tol=60)
    assert_colour(out[-10:], BLUE, tol=60)


def test_cmyk_jpeg(tmp_path):
    out = load_one(tmp_path, "cmyk.jpg", solid((0, 255, 255, 0), mode="CMYK"), quality=95)
    assert_colour(out, RED, tol=40)


def test_grey_png(tmp_path):
    out = load_one(tmp_path, "grey.png", solid(100, mode="L"))
    assert_colour(out, (100, 100, 100), tol=1)


def test_palette_gif_transparency_becomes_white(tmp_path):
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)  # index 0 black (transparent), 1 green
    img.paste(1, (16, 0, 32, 32))
    out = load_one(tmp_path, "p.gif", img, size=32, transparency=0)
    assert_colour(out[:, :14], WHITE, tol=2)  # not black: alpha was honoured
    assert_colour(out[:, 18:], (0, 200, 0), tol=2)


def test_rgba_png_composited_on_white(tmp_path):
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    img.paste((255, 0, 0, 255), (0, 0, 16, 32))  # opaque red left half
    img.paste((0, 0, 255, 128), (16, 16, 32, 32))  # half-transparent blue bottom-right
    out = load_one(tmp_path, "rgba.png", img, size=32)
    assert_colour(out[:, :14], RED, tol=2)
    assert_colour(out[:14, 18:], WHITE, tol=2)
    assert_colour(out[18:, 18:], (127, 127, 255), tol=3)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    img = Image.fromarray(np.full((24, 24), 40000, dtype=np.uint16))
    assert img.mode == "I;16"
    out = load_one(tmp_path, "deep.png", img)
    assert_colour(out, (156, 156, 156), tol=2)  # 40000 / 257; a blind convert gives 255


def test_bilevel_png(tmp_path):
    img = Image.new("1", (24, 24), 0)
    img.paste(1, (12, 0, 24, 24))
    out = load_one(tmp_path, "bw.png", img, size=24)
    assert_colour(out[:, :10], (0, 0, 0), tol=2)
    assert_colour(out[:, 14:], WHITE, tol=2)


@pytest.mark.parametrize("name", ["anim.gif", "pages.tiff"])
def test_multi_frame_uses_first_frame(tmp_path, name):
    first, *rest = [solid(RED), solid(GREEN), solid(BLUE)]
    out = load_one(tmp_path, name, first, save_all=True, append_images=rest)
    with Image.open(tmp_path / "root" / "c" / name) as check:
        assert getattr(check, "n_frames", 1) == 3
    assert_colour(out, RED, tol=10)


def test_non_square_is_centre_cropped(tmp_path):
    img = Image.new("RGB", (96, 32), RED)
    img.paste(GREEN, (32, 0, 64, 32))
    img.paste(BLUE, (64, 0, 96, 32))
    out = load_one(tmp_path, "wide.png", img, size=16)  # resized to 48x16, then middle 16x16
    green = (out[..., 1] > 200) & (out[..., 0] < 60) & (out[..., 2] < 60)
    assert green.mean() > 0.8
    assert_colour(out[:, 3:13], GREEN, tol=10)


def test_tall_image_resized_on_shorter_edge(tmp_path):
    img = Image.new("RGB", (40, 120), RED)
    img.paste(BLUE, (0, 40, 40, 80))  # middle third blue
    out = load_one(tmp_path, "tall.jpg", img, size=8, quality=95)
    assert_colour(out[2:6, 2:6], BLUE, tol=60)


# --- errors -----------------------------------------------------------------------------------


def test_truncated_jpeg(tmp_path, shared_data):
    real = (shared_data / "fids30" / "apples" / "1.jpg").read_bytes()
    files = {"apples/ok.jpg": real, "apples/cut.jpg": real[: len(real) // 2]}
    root = make_folder(tmp_path / "root", files)
    err = expect_data_error(root, root / "apples" / "cut.jpg", size=16)
    assert "truncated" in str(err) or "broken" in str(err)


def test_text_file_named_jpg(tmp_path):
    files = {"a/good.png": solid(RED), "a/x.jpg": b"hello, not a JPEG\n"}
    root = make_folder(tmp_path / "root", files)
    err = expect_data_error(root, root / "a" / "x.jpg")
    assert "cannot" in str(err)


def test_empty_class_folder(tmp_path):
    root = make_folder(tmp_path / "root", {"full/a.png": solid(RED)})
    (root / "empty").mkdir()
    (root / "empty" / "links.txt").write_text("only text here")
    err = expect_data_error(root, root / "empty")
    assert "empty class folder" in str(err)


def test_missing_root(tmp_path):
    expect_data_error(tmp_path / "nope", tmp_path / "nope")


def test_root_is_a_file(tmp_path):
    (tmp_path / "file.png").write_bytes(b"x")
    expect_data_error(tmp_path / "file.png", tmp_path / "file.png")


def test_root_without_class_folders(tmp_path):
    solid(RED).save(tmp_path / "loose.png")
    err = expect_data_error(tmp_path, tmp_path)
    assert "no class" in str(err)


@pytest.mark.parametrize("size", [0, 7, -64])
def test_size_too_small(tmp_path, size):
    root = make_folder(tmp_path / "root", {"a/x.png": solid(RED)})
    expect_data_error(root, root, size=size)


# --- cache ------------------------------------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch):
    """Count calls of the per-image decoder (the expensive step the cache should skip)."""
    calls = []
    real = images_mod.decode_image

    def counting(path, size):
        calls.append(Path(path).name)
        return real(path, size)

    monkeypatch.setattr(images_mod, "decode_image", counting)
    return calls


def three_image_folder(tmp_path) -> Path:
    return make_folder(tmp_path / "root", {"a/1.png": solid(RED), "a/2.png": solid(GREEN),
                                           "b/3.png": solid(BLUE)})


def test_cache_hit_decodes_nothing(tmp_path, monkeypatch):
    root, cache = three_image_folder(tmp_path), tmp_path / "cache"
    first = load_image_folder(root, size=16, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1 and not list(cache.glob("*.tmp"))

    def boom(path, size):
        raise AssertionError(f"decoded {path} despite a valid cache")

    monkeypatch.setattr(images_mod, "decode_image", boom)
    second = load_image_folder(root, size=16, cache_dir=cache)
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.classes == first.classes and second.files == first.files
    assert second.labels.dtype == np.int64 and second.images.dtype == np.uint8


def test_touched_file_invalidates_cache(tmp_path, decode_calls):
    root, cache = three_image_folder(tmp_path), tmp_path / "cache"
    load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 3
    load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 3

    stat = (root / "a" / "2.png").stat()
    os.utime(root / "a" / "2.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 6

    solid(WHITE).save(root / "a" / "2.png")  # new contents
    updated = load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 9
    assert_colour(updated.images[1].astype(int), WHITE, tol=1)

    load_image_folder(root, size=24, cache_dir=cache)  # another size is another cache
    assert len(decode_calls) == 12


def test_added_file_invalidates_cache(tmp_path, decode_calls):
    root, cache = three_image_folder(tmp_path), tmp_path / "cache"
    load_image_folder(root, size=16, cache_dir=cache)
    solid(RED).save(root / "b" / "4.png")
    result = load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 3 + 4 and len(result) == 4


def test_corrupt_cache_is_rebuilt(tmp_path, decode_calls):
    root, cache = three_image_folder(tmp_path), tmp_path / "cache"
    first = load_image_folder(root, size=16, cache_dir=cache)
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(npz.read_bytes()[:100])
    again = load_image_folder(root, size=16, cache_dir=cache)
    assert len(decode_calls) == 6
    np.testing.assert_array_equal(again.images, first.images)
    load_image_folder(root, size=16, cache_dir=cache)  # rebuilt file is valid again
    assert len(decode_calls) == 6


def test_progress_goes_to_stderr(tmp_path, capsys):
    root = three_image_folder(tmp_path)
    load_image_folder(root, size=8, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "decoded 3/3 images" in captured.err
    load_image_folder(root, size=8)
    assert capsys.readouterr().err == ""


# --- tensors ----------------------------------------------------------------------------------


def test_to_tensor_range_and_layout(tmp_path):
    files = {"a/black.png": solid((0, 0, 0)), "a/white.png": solid(WHITE), "b/red.png": solid(RED)}
    root = make_folder(tmp_path / "root", files)
    result = load_image_folder(root, size=8)
    t = result.to_tensor()
    assert t.dtype == torch.float32 and t.shape == (3, 3, 8, 8) and t.is_contiguous()
    assert t.min() >= -1 and t.max() <= 1
    assert torch.all(t[0] == -1) and torch.all(t[1] == 1)
    assert torch.all(t[2, 0] == 1) and torch.all(t[2, 1:] == -1)  # red lives in channel 0
    assert result.to_tensor(2).shape == (1, 3, 8, 8)
    assert result.to_tensor(result.class_indices("a")).shape == (2, 3, 8, 8)
    assert result.to_tensor(slice(1, None)).shape == (2, 3, 8, 8)


def test_read_only_arrays_become_tensors_without_a_warning():
    """What reaches a trial or the evaluator through Ray's object store is read-only; sharing it
    makes torch print a UserWarning in every worker, which a user takes for a fault."""
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    labels = np.array([1, 0])
    for array in (images, labels):
        array.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, y = to_unit_range(images), label_tensor(labels)
    assert x.shape == (2, 3, 4, 4) and torch.all(x == -1)
    assert y.tolist() == [1, 0] and y.dtype == torch.int64
    y[0] = 5  # a copy: the caller's array is untouched
    assert labels.tolist() == [1, 0]


def test_fids30_tensor(shared_data, tmp_path):
    src = shared_data / "fids30"
    root = tmp_path / "fids"
    for rel in ["apples/1.jpg", "bananas/1.jpg"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, root / rel)
    result = load_image_folder(root, size=32)
    assert isinstance(result, ImageSet)
    t = result.to_tensor()
    assert t.shape == (2, 3, 32, 32) and -1 <= t.min() < t.max() <= 1
    expected = torch.from_numpy(result.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(t, expected)
