"""Image folders: layouts, archives, image modes and sizes, bad files and unsafe archives."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ is not a package
from test_data_helpers import (  # noqa: E402
    image_bytes,
    isolated_cache,  # noqa: F401 - fixture
    noise_folder,
    solid_png,
    write_files,
    write_tar,
    write_zip,
)

from cifarkit.data import DataError, load_dataset, write_synthetic_image_folder  # noqa: E402


@pytest.fixture(autouse=True)
def _no_user_cache(isolated_cache):  # noqa: F811
    return isolated_cache


def _load(path, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("use_cache", False)
    return load_dataset(path, **kwargs)


@pytest.mark.parametrize("archive", [None, "tar.gz", "zip"])
@pytest.mark.parametrize("split", [True, False])
def test_synthetic_folders_load_from_dir_and_archives(tmp_path, archive, split):
    path = write_synthetic_image_folder(tmp_path / "shapes", 20, split=split, n_test_per_class=5, archive=archive)
    ds = _load(path)
    assert ds.source_kind == "image-folder" and ds.source == str(path.resolve())
    assert ds.class_names == ["circle", "cross", "square", "triangle"]  # sorted folder names
    if split:
        assert ds.counts() == {"train": 72, "val": 8, "test": 20}
        assert ds.split_origin == "given train/test; val from train"
    else:
        assert ds.counts() == {"train": 64, "val": 8, "test": 8}
        assert ds.split_origin == "stratified split of unsplit folder"
    for x, y in (ds.split(s) for s in ("train", "val", "test")):
        assert x.dtype == np.uint8 and x.shape[1:] == (32, 32, 3) and x.flags.c_contiguous
        assert y.dtype == np.int64 and len(y) == len(x)
    assert ds.skipped == [] and ds.image_info["formats"] == {"PNG": 100 if split else 80}


def test_pixels_and_labels_are_exact_for_lossless_images(tmp_path):
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    files = {f"{name}/{i}.png": solid_png(c) for name, c in colours.items() for i in range(4)}
    ds = _load(write_files(tmp_path / "solid", files), val_fraction=0.25, test_fraction=0.25)
    assert ds.class_names == ["blue", "green", "red"]
    assert ds.counts() == {"train": 6, "val": 3, "test": 3}
    for x, y in (ds.split(s) for s in ("train", "val", "test")):
        for img, label in zip(x, y):
            assert (img == colours[ds.class_names[label]]).all()


def _mode_images() -> dict[str, bytes]:
    """One image per awkward mode, format and size; each is mostly one known colour."""
    rgba = Image.new("RGBA", (50, 80), (255, 0, 0, 255))
    rgba.paste((0, 255, 0, 0), (0, 0, 50, 40))  # top half fully transparent (green underneath)
    palette = Image.new("RGB", (200, 120), (0, 0, 255)).quantize(4)
    grey16 = Image.fromarray(np.full((40, 40), 257 * 100, dtype=np.uint16))
    files = {
        "a/grey_L.png": image_bytes(Image.new("L", (50, 80), 200), "PNG"),
        "a/palette.gif": image_bytes(palette, "GIF"),
        "a/rgba.png": image_bytes(rgba, "PNG"),
        "a/cmyk.jpg": image_bytes(Image.new("CMYK", (64, 64), (0, 0, 0, 0)), "JPEG", quality=95),
        "a/grey16.png": image_bytes(grey16, "PNG"),
        "a/la.png": image_bytes(Image.new("LA", (32, 32), (90, 255)), "PNG"),
        "a/bits.bmp": image_bytes(Image.new("1", (33, 31), 1), "BMP"),
        "a/cmyk.tiff": image_bytes(Image.new("CMYK", (20, 20), (0, 0, 0, 0)), "TIFF"),
        "a/grey.pgm": image_bytes(Image.new("L", (32, 32), 10), "PPM"),
        "a/big.jpeg": image_bytes(Image.new("RGB", (640, 480), (250, 250, 250)), "JPEG", quality=95),
        "b/rgb.ppm": image_bytes(Image.new("RGB", (32, 32), (1, 2, 3)), "PPM"),
    }
    if features.check("webp"):
        files["b/rgb.webp"] = image_bytes(Image.new("RGB", (48, 48), (0, 0, 0)), "WEBP", lossless=True)
    return files


def test_any_mode_and_size_becomes_rgb_uint8_at_target_size(tmp_path):
    files = _mode_images()
    ds = _load(write_files(tmp_path / "modes", files), val_fraction=0.0, test_fraction=0.0, image_size=32)
    assert ds.counts()["train"] == len(files) and ds.skipped == []
    assert ds.x_train.shape == (len(files), 32, 32, 3) and ds.x_train.dtype == np.uint8
    modes = ds.image_info["modes"]
    for mode in ("L", "P", "RGBA", "CMYK", "I;16", "LA", "1", "RGB"):
        assert any(m == mode for m in modes), (mode, modes)
    assert ds.image_info["sizes"]["50x80"] == 2 and ds.image_info["sizes"]["200x120"] == 1
    assert ds.image_info["formats"]["GIF"] == 1 and ds.image_info["formats"]["TIFF"] == 1


def _load_one(tmp_path, data: bytes, name="x.png", image_size=32) -> np.ndarray:
    files = {f"a/{name}": data, "b/other.png": solid_png((0, 0, 0))}
    ds = _load(
        write_files(tmp_path / name.replace(".", "_"), files),
        val_fraction=0.0,
        test_fraction=0.0,
        image_size=image_size,
    )
    return ds.x_train[ds.y_train == 0][0]


def test_mode_conversion_policy(tmp_path):
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    rgba.paste((0, 255, 0, 0), (0, 0, 32, 16))
    img = _load_one(tmp_path, image_bytes(rgba, "PNG"), "rgba.png")
    assert (img[:16] == 0).all()  # transparent: composited on black
    assert (img[16:] == (255, 0, 0)).all()
    half = Image.new("RGBA", (32, 32), (200, 100, 50, 128))
    assert np.abs(_load_one(tmp_path, image_bytes(half, "PNG"), "half.png").astype(int) - (100, 50, 25)).max() <= 1
    grey16 = Image.fromarray(np.array([[0, 257 * 100, 65535, 257 * 7]] * 32 * 8, dtype=np.uint16).reshape(32, 32))
    img = _load_one(tmp_path, image_bytes(grey16, "PNG"), "grey16.png")
    assert img[0, :4, 0].tolist() == [0, 100, 255, 7] and (img[..., 0] == img[..., 2]).all()
    cmyk = _load_one(tmp_path, image_bytes(Image.new("CMYK", (32, 32), (0, 255, 0, 0)), "TIFF"), "cmyk.tif")
    assert (cmyk == (255, 0, 255)).all()
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert (_load_one(tmp_path, image_bytes(palette, "PNG"), "p.png") == (10, 20, 30)).all()


def test_resize_keeps_aspect_ratio_and_crops_the_centre(tmp_path):
    wide = np.zeros((100, 200, 3), dtype=np.uint8)
    wide[:, :50] = (255, 0, 0)  # left and right quarters fall outside the centre square
    wide[:, 150:] = (255, 0, 0)
    wide[:, 50:150] = (0, 255, 0)
    img = _load_one(tmp_path, image_bytes(Image.fromarray(wide), "PNG"), "wide.png", image_size=16)
    assert img.shape == (16, 16, 3)
    # Lanczos reaches a little past the crop box, so the outer columns are only mostly green.
    assert np.abs(img[:, 1:-1].astype(int) - (0, 255, 0)).max() <= 2
    assert (img[:, [0, -1], 1] > 200).all() and (img[:, [0, -1], 0] < 40).all()
    tall = np.zeros((80, 50, 3), dtype=np.uint8)
    tall[:15] = (0, 0, 255)
    tall[15:65] = (255, 255, 0)
    tall[65:] = (0, 0, 255)
    img = _load_one(tmp_path, image_bytes(Image.fromarray(tall), "PNG"), "tall.png", image_size=(10, 10))
    assert np.abs(img[1:-1].astype(int) - (255, 255, 0)).max() <= 2


def test_non_square_target_and_upscaling(tmp_path):
    path = write_synthetic_image_folder(tmp_path / "s", 5, split=False, image_size=20)  # 5: enough for val and test
    ds = _load(path, image_size=(24, 40))
    assert ds.x_train.shape[1:] == (24, 40, 3) and ds.input_shape == (24, 40, 3) and ds.image_size == (24, 40)
    with pytest.raises(ValueError, match="image_size"):
        _load(path, image_size=(24,))
    with pytest.raises(ValueError, match="image_size"):
        _load(path, image_size=0)


def test_images_at_target_size_are_not_resampled(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert (_load_one(tmp_path, image_bytes(Image.fromarray(noise), "PNG"), "n.png") == noise).all()


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path):
    big = Image.new("RGB", (1600, 1200), (30, 160, 90))
    img = _load_one(tmp_path, image_bytes(big, "JPEG", quality=95), "big.jpg")
    assert np.abs(img.astype(int) - (30, 160, 90)).max() <= 3


def test_format_comes_from_content_not_extension(tmp_path):
    files = {
        "a/really_png.JPG": solid_png((9, 9, 9)),
        "a/b.Png": solid_png((9, 9, 9)),
        "b/c.jpeg": solid_png((1, 1, 1)),
    }
    ds = _load(write_files(tmp_path / "ext", files), val_fraction=0.0, test_fraction=0.0)
    assert ds.counts()["train"] == 3 and ds.skipped == [] and ds.image_info["formats"] == {"PNG": 3}


def test_hidden_macos_and_non_image_files_are_ignored(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 3, "dog": 3})
    write_files(
        root,
        {
            ".DS_Store": b"\0\0junk",
            "cat/._0000.png": b"AppleDouble junk",
            ".hidden/cat/x.png": b"garbage",
            "__MACOSX/cat/._0001.png": b"garbage",
            "cat/notes.txt": b"not an image",
            "dog/Thumbs.db": b"junk",
            "cat/.cache/y.png": b"garbage",
        },
    )
    ds = _load(root, val_fraction=0.0, test_fraction=0.0)
    assert ds.class_names == ["cat", "dog"] and ds.counts()["train"] == 6 and ds.skipped == []


def test_corrupt_images_are_skipped_and_listed_strict_raises(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 4, "dog": 4})
    good = (root / "cat" / "0000.png").read_bytes()
    write_files(root, {"cat/truncated.png": good[: len(good) // 2], "dog/garbage.jpg": b"\xff\xd8 not really a jpeg"})
    ds = _load(root, val_fraction=0.0, test_fraction=0.0)
    assert ds.counts()["train"] == 8
    assert sorted(Path(p).name for p, _ in ds.skipped) == ["garbage.jpg", "truncated.png"]
    assert all(reason for _, reason in ds.skipped)
    with pytest.raises(DataError, match=r"(truncated\.png|garbage\.jpg).*strict=False"):
        _load(root, strict=True)
    # A cached non-strict load still refuses strict use.
    load_dataset(root, progress=False)
    with pytest.raises(DataError, match="strict=False"):
        load_dataset(root, progress=False, strict=True)


def test_corrupt_member_in_archive_is_skipped(tmp_path):
    members = [(f"d/{c}/{i}.png", solid_png((i, i, i))) for c in ("x", "y") for i in range(3)]
    members.append(("d/x/bad.png", b"\x89PNG broken"))
    ds = _load(write_tar(tmp_path / "a.tgz", members), val_fraction=0.0, test_fraction=0.0)
    assert ds.counts()["train"] == 6
    assert [p for p, _ in ds.skipped] == [f"{tmp_path / 'a.tgz'}::d/x/bad.png"]


def test_empty_folder_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No image files"):
        _load(tmp_path / "empty")
    write_files(tmp_path / "texts", {"a/readme.txt": b"x", "b/notes.md": b"y"})
    with pytest.raises(DataError, match="No image files"):
        _load(tmp_path / "texts")


def test_class_without_readable_image_is_named(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 3, "dog": 3})
    write_files(root, {"bird/a.png": b"garbage", "bird/b.jpg": b"more garbage"})
    with pytest.raises(DataError, match=r"f/bird has no readable image"):
        _load(root, val_fraction=0.0, test_fraction=0.0)  # 3 per class is too few for the default 10% splits
    (root / "bird" / "a.png").unlink()
    (root / "bird" / "b.jpg").unlink()
    (root / "bird" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"f/bird contains no image files"):
        _load(root)


def test_single_class_is_a_data_error(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 3})
    with pytest.raises(DataError, match="at least 2 classes"):
        _load(root)
    split_root = noise_folder(tmp_path / "g", {"cat": 3}, prefix="train/")
    with pytest.raises(DataError, match="at least 2 classes"):
        _load(split_root)


@pytest.mark.parametrize("member", ["../evil.png", "/etc/x.png", "ok/../../evil.png"])
def test_tar_with_escaping_member_is_refused(tmp_path, member):
    target = tmp_path / "inside" / "data.tar.gz"
    target.parent.mkdir()
    members = [(f"d/{c}/{i}.png", solid_png((i, 0, 0))) for c in ("x", "y") for i in range(2)]
    archive = write_tar(target, members + [(member, solid_png((1, 2, 3)))])
    with pytest.raises(DataError, match=rf"refusing to read .*{member.replace('.', '[.]')}"):
        _load(archive)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "inside" / "evil.png").exists()


@pytest.mark.parametrize(
    "kind, target", [("sym", "../../../etc/passwd"), ("sym", "/etc/passwd"), ("hard", "../outside.png")]
)
def test_tar_links_pointing_outside_are_refused(tmp_path, kind, target):
    members = [(f"d/{c}/{i}.png", solid_png((i, 0, 0))) for c in ("x", "y") for i in range(2)]
    archive = write_tar(tmp_path / "links.tar", members + [("d/x/link.png", (kind, target))], mode="w")
    with pytest.raises(DataError, match=r"refusing to read .*d/x/link\.png"):
        _load(archive)


def test_tar_links_inside_are_ignored(tmp_path):
    members = [(f"d/{c}/{i}.png", solid_png((i, 0, 0))) for c in ("x", "y") for i in range(2)]
    links = [
        ("d/x/link.png", ("sym", "0.png")),
        ("d/x/up.png", ("sym", "../y/1.png")),
        ("d/y/h.png", ("hard", "d/x/0.png")),
    ]
    archive = write_tar(tmp_path / "links.tar", members + links, mode="w")
    assert _load(archive, val_fraction=0.0, test_fraction=0.0).counts()["train"] == 4


@pytest.mark.parametrize("member", ["../evil.png", "/abs.png", "a\\..\\..\\evil.png"])
def test_zip_with_escaping_member_is_refused(tmp_path, member):
    members = [(f"d/{c}/{i}.png", solid_png((i, 0, 0))) for c in ("x", "y") for i in range(2)]
    archive = write_zip(tmp_path / "data.zip", members + [(member, solid_png((1, 2, 3)))])
    with zipfile.ZipFile(archive) as zf:
        assert member in zf.namelist()  # written as given, not sanitized
    with pytest.raises(DataError, match="refusing to read"):
        _load(archive)
    assert not (tmp_path.parent / "evil.png").exists()


def test_split_folder_names_are_case_insensitive(tmp_path):
    root = tmp_path / "f"
    noise_folder(root, {"cat": 6, "dog": 6}, prefix="Train/")
    noise_folder(root, {"cat": 2, "dog": 2}, prefix="VALID/")
    noise_folder(root, {"cat": 3, "dog": 3}, prefix="test/")
    ds = _load(root)
    assert ds.counts() == {"train": 12, "val": 4, "test": 6}
    assert ds.split_origin == "given train/val/test"


def test_train_only_split_folder_carves_val_and_test(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 10, "dog": 10}, prefix="train/")
    ds = _load(root, val_fraction=0.2, test_fraction=0.1)
    assert ds.counts() == {"train": 14, "val": 4, "test": 2}
    assert ds.split_origin == "given train only; val and test from train"


def test_two_val_folders_are_ambiguous(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 2, "dog": 2}, prefix="train/")
    noise_folder(root, {"cat": 1, "dog": 1}, prefix="val/")
    noise_folder(root, {"cat": 1, "dog": 1}, prefix="validation/")
    with pytest.raises(DataError, match="several folders"):
        _load(root)


def test_test_class_missing_from_train_is_an_error(tmp_path):
    root = noise_folder(tmp_path / "f", {"cat": 2, "dog": 2}, prefix="train/")
    noise_folder(root, {"cat": 1, "eel": 1}, prefix="test/")
    with pytest.raises(DataError, match="'eel' appears in"):
        _load(root)


def test_wrapper_folder_is_tolerated_and_loose_images_are_listed(tmp_path):
    root = noise_folder(tmp_path / "outer" / "wrapper", {"cat": 3, "dog": 3})
    ds = _load(tmp_path / "outer", val_fraction=0.0, test_fraction=0.0)
    assert ds.class_names == ["cat", "dog"] and ds.counts()["train"] == 6
    (root / "loose.png").write_bytes(solid_png((5, 5, 5)))
    ds = _load(root, val_fraction=0.0, test_fraction=0.0)
    assert ds.counts()["train"] == 6
    assert [(Path(p).name, "class folder" in r) for p, r in ds.skipped] == [("loose.png", True)]


def test_jpeg_folder_archive_with_subset(tmp_path):
    archive = write_synthetic_image_folder(
        tmp_path / "j", 30, split=True, n_test_per_class=10, fmt="jpg", archive="tar.gz"
    )
    ds = _load(archive, subset=5)
    assert ds.counts() == {"train": 20, "val": 12, "test": 20}  # val: 3 per class (10% of 30)
    assert ds.image_info["formats"] == {"JPEG": 52}
    assert "at most 5 per class" in ds.split_origin
