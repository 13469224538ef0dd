"""Image datasets: readers on tiny files in the real formats, splits, download errors, augmentation, batches."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nao.errors import DatasetError, UserError
from nao.tasks import images as im
from nao.tasks.cnn.train import DataConfig
from nao.tasks.images import DATASETS, ImageData, augment, batches, load_images, normalize

IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------------------------------------- writers (real formats)


def idx_bytes(array: np.ndarray, *, magic: bytes | None = None) -> bytes:
    header = magic if magic is not None else bytes([0, 0, 8, array.ndim])
    return header + np.asarray(array.shape, dtype=">u4").tobytes() + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    data = idx_bytes(array)
    (path.parent / f"{path.name}.gz").write_bytes(gzip.compress(data)) if gz else path.write_bytes(data)


def make_mnist_like(folder: Path, *, n_train: int = 40, n_test: int = 12, gz: bool | tuple = True, seed: int = 0):
    """Idx files whose train image i carries its index in pixels (0, 0) and (0, 1); test images have 255 at (0, 2)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    x_train[:, 0, 0], x_train[:, 0, 1], x_train[:, 0, 2] = np.arange(n_train) % 256, np.arange(n_train) // 256, 0
    x_test = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    x_test[:, 0, 2] = 255
    y_train, y_test = rng.integers(0, 10, size=n_train), rng.integers(0, 10, size=n_test)
    gzs = gz if isinstance(gz, tuple) else (gz,) * 4
    for name, array, z in zip(IDX, (x_train, y_train, x_test, y_test), gzs, strict=True):
        write_idx(folder / name, array, gz=z)
    return x_train, y_train, x_test, y_test


def write_cifar_batch(path: Path, data: np.ndarray, labels: np.ndarray, *, key: bytes = b"labels") -> None:
    batch = {
        b"batch_label": b"a batch",
        key: [int(v) for v in labels],
        b"data": data,
        b"filenames": [b"x.png"] * len(data),
    }
    if key == b"fine_labels":
        batch[b"coarse_labels"] = [int(v) // 5 for v in labels]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def make_cifar10(folder: Path, *, per_batch: int = 4, n_test: int = 5, seed: int = 0):
    """``cifar-10-batches-py`` in ``folder``; returns the (N, 3072) rows and labels written, train then test."""
    rng = np.random.default_rng(seed)
    root = folder / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    rows = rng.integers(0, 256, size=(5 * per_batch + n_test, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=len(rows))
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        write_cifar_batch(root / f"data_batch_{i + 1}", rows[part], labels[part])
    write_cifar_batch(root / "test_batch", rows[5 * per_batch :], labels[5 * per_batch :])
    return rows[: 5 * per_batch], labels[: 5 * per_batch], rows[5 * per_batch :], labels[5 * per_batch :]


def ids(images: torch.Tensor) -> list[int]:
    """The train-image indices that make_mnist_like wrote into each image."""
    return (images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist()


# ------------------------------------------------------------------------------------------------------------ readers


@pytest.mark.parametrize("point_at_folder", [False, True])
def test_cifar10_reads_exact_pixels_in_chw_layout(tmp_path, point_at_folder):
    rows, labels, test_rows, test_labels = make_cifar10(tmp_path)
    data_dir = tmp_path / "cifar-10-batches-py" if point_at_folder else tmp_path
    data = load_images("cifar10", data_dir=data_dir, valid_size=0, download=False)
    x, y = data.train
    assert data.shape == (3, 32, 32) and data.n_classes == 10
    assert x.dtype == torch.uint8 and y.dtype == torch.int64 and x.shape == (20, 3, 32, 32)
    assert torch.equal(y, torch.from_numpy(labels))
    # a 3072 row is the R plane, then G, then B, each 32 rows of 32 pixels
    for c in range(3):
        assert np.array_equal(x[:, c].numpy(), rows[:, c * 1024 : (c + 1) * 1024].reshape(-1, 32, 32))
    assert x[7, 2, 5, 9] == rows[7, 2 * 1024 + 5 * 32 + 9]
    assert np.array_equal(data.test[0].reshape(-1, 3072).numpy(), test_rows)
    assert torch.equal(data.test[1], torch.from_numpy(test_labels))
    assert data.valid[0].shape == (0, 3, 32, 32) and data.valid[1].shape == (0,)


def test_cifar100_reads_fine_labels(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    rows, labels = rng.integers(0, 256, size=(30, 3072), dtype=np.uint8), np.arange(70, 100)
    write_cifar_batch(root / "train", rows[:20], labels[:20], key=b"fine_labels")
    write_cifar_batch(root / "test", rows[20:], labels[20:], key=b"fine_labels")
    data = load_images("cifar100", data_dir=tmp_path, valid_size=5, download=False)
    assert data.n_classes == 100 and len(data.train[1]) == 15 and len(data.valid[1]) == 5
    assert torch.equal(data.test[1], torch.arange(90, 100))
    assert np.array_equal(data.test[0].reshape(10, 3072).numpy(), rows[20:])


@pytest.mark.parametrize("gz", [True, False, (True, False, False, True)])
def test_idx_files_gzipped_or_raw(tmp_path, gz):
    x_train, y_train, x_test, y_test = make_mnist_like(tmp_path, gz=gz)
    data = load_images("mnist", data_dir=tmp_path, valid_size=0, download=False)
    assert data.shape == (1, 28, 28) and data.n_classes == 10
    assert torch.equal(data.train[0][:, 0], torch.from_numpy(x_train))
    assert torch.equal(data.train[1], torch.from_numpy(y_train))
    assert torch.equal(data.test[0][:, 0], torch.from_numpy(x_test))
    assert torch.equal(data.test[1], torch.from_numpy(y_test))


# ------------------------------------------------------------------------------------------------- splits and stats


def test_validation_split_comes_from_train_only_and_is_seeded(tmp_path):
    x_train, _, x_test, y_test = make_mnist_like(tmp_path, n_train=300)
    a = load_images("fashion-mnist", data_dir=tmp_path, valid_size=50, seed=0, download=False)
    train_ids, valid_ids = ids(a.train[0]), ids(a.valid[0])
    assert len(valid_ids) == 50 and len(train_ids) == 250
    assert not set(train_ids) & set(valid_ids) and sorted(train_ids + valid_ids) == list(range(300))
    assert (a.valid[0][:, 0, 0, 2] == 0).all()  # no test image in it
    for split_ids, (images, _) in ((train_ids, a.train), (valid_ids, a.valid)):  # the pixels travel with the index
        assert torch.equal(images[:, 0], torch.from_numpy(x_train[split_ids]))
    assert torch.equal(a.test[0][:, 0], torch.from_numpy(x_test)) and torch.equal(a.test[1], torch.from_numpy(y_test))
    again = load_images("fashion-mnist", data_dir=tmp_path, valid_size=50, seed=0, download=False)
    assert ids(again.valid[0]) == valid_ids
    other = load_images("fashion-mnist", data_dir=tmp_path, valid_size=50, seed=1, download=False)
    assert ids(other.valid[0]) != valid_ids


def test_a_fixed_split_seed_keeps_the_validation_split_whatever_the_runs_seed(tmp_path):
    make_mnist_like(tmp_path, n_train=300)
    config = DataConfig(name="fashion-mnist", dir=str(tmp_path), valid_size=50, download=False)
    by_run_seed = {seed: ids(config.load(seed).valid[0]) for seed in (0, 1)}
    assert by_run_seed[0] != by_run_seed[1]  # unset: the run's seed draws the split
    fixed = dataclasses.replace(config, split_seed=0)
    assert ids(fixed.load(1).valid[0]) == ids(fixed.load(7).valid[0]) == by_run_seed[0]


def test_mean_and_std_are_those_of_the_train_part(tmp_path):
    rows, *_ = make_cifar10(tmp_path, per_batch=10)
    data = load_images("cifar10", data_dir=tmp_path, valid_size=20, download=False)
    x = data.train[0].numpy().astype(np.float64) / 255
    assert data.mean == pytest.approx(x.mean(axis=(0, 2, 3)), abs=1e-12)
    assert data.std == pytest.approx(x.std(axis=(0, 2, 3)), abs=1e-12)
    everything = rows.reshape(-1, 3, 32, 32).astype(np.float64) / 255
    assert not np.allclose(data.mean, everything.mean(axis=(0, 2, 3)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("valid_size", [40, 41, -1])
def test_valid_size_must_leave_train_images(tmp_path, valid_size):
    make_mnist_like(tmp_path, n_train=40)
    with pytest.raises(DatasetError, match="valid_size"):
        load_images("mnist", data_dir=tmp_path, valid_size=valid_size, download=False)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match="cifar10, cifar100, fashion-mnist, mnist"):
        load_images("imagenet")


def test_dataset_error_is_a_user_error():
    assert issubclass(DatasetError, UserError)


# ------------------------------------------------------------------------------------ missing files and downloads


def no_network(url, dest):
    raise OSError("no network")


def test_missing_files_without_download(tmp_path):
    make_mnist_like(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as err:
        load_images("fashion-mnist", data_dir=tmp_path, download=False)
    message = str(err.value)
    assert "\n" not in message and "download" not in message
    assert f"train-images-idx3-ubyte(.gz) not found in {tmp_path}" in message and "--data-dir" in message


def test_failed_download_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "_fetch", no_network)
    with pytest.raises(DatasetError) as err:
        load_images("mnist", data_dir=tmp_path / "mnist", download=True)
    message = str(err.value)
    assert message.startswith("mnist: train-images-idx3-ubyte(.gz) not found in ")
    assert "download failed (no network)" in message and "--data-dir" in message and "\n" not in message
    assert not any((tmp_path / "mnist").iterdir())
    with pytest.raises(DatasetError, match=r"data_batch_1 not found .* download failed \(no network\).*--data-dir"):
        load_images("cifar10", data_dir=tmp_path / "c10", download=True)
    assert not any((tmp_path / "c10").iterdir())


def test_download_checks_md5_before_keeping_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(b"not the real file"))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz .* has md5 [0-9a-f]{32}, expected f68b3c2d"):
        load_images("mnist", data_dir=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_download_of_idx_files(tmp_path, monkeypatch):
    source = tmp_path / "source"
    x_train, *_ = make_mnist_like(source, gz=True)
    payload = {f"https://example.org/{n}.gz": (source / f"{n}.gz").read_bytes() for n in IDX}
    md5s = tuple(hashlib.md5(payload[f"https://example.org/{n}.gz"]).hexdigest() for n in IDX)
    spec = dataclasses.replace(DATASETS["mnist"], urls=tuple(payload), md5s=md5s)
    monkeypatch.setitem(DATASETS, "mnist", spec)
    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(payload[url]))
    (tmp_path / "data").mkdir()
    write_idx(tmp_path / "data" / IDX[3], np.zeros(12, dtype=np.uint8), gz=False)  # present: not downloaded again
    data = load_images("mnist", data_dir=tmp_path / "data", valid_size=0)
    assert torch.equal(data.train[0][:, 0], torch.from_numpy(x_train)) and (data.test[1] == 0).all()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted([*(f"{n}.gz" for n in IDX[:3]), IDX[3]])


def test_download_of_cifar_tarball_extracts_only_the_batches(tmp_path, monkeypatch):
    rows, _, test_rows, _ = make_cifar10(tmp_path / "source")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((tmp_path / "source" / "cifar-10-batches-py").iterdir()):
            tar.add(path, arcname=f"cifar-10-batches-py/{path.name}")
        evil = tarfile.TarInfo("../evil")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = buffer.getvalue()
    spec = dataclasses.replace(DATASETS["cifar10"], md5s=(hashlib.md5(archive).hexdigest(),))
    monkeypatch.setitem(DATASETS, "cifar10", spec)
    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(archive))
    data = load_images("cifar10", data_dir=tmp_path / "data" / "c10", valid_size=0)
    assert np.array_equal(data.train[0].reshape(-1, 3072).numpy(), rows)
    assert np.array_equal(data.test[0].reshape(-1, 3072).numpy(), test_rows)
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["c10"]  # nothing written outside, tarball removed
    assert [p.name for p in (tmp_path / "data" / "c10").iterdir()] == ["cifar-10-batches-py"]
    assert sorted(p.name for p in (tmp_path / "data" / "c10" / "cifar-10-batches-py").iterdir()) == sorted(spec.files)


def test_cifar_tarball_with_a_link_in_place_of_a_batch_is_refused(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = buffer.getvalue()
    monkeypatch.setitem(
        DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], md5s=(hashlib.md5(archive).hexdigest(),))
    )
    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(archive))
    with pytest.raises(DatasetError, match="data_batch_1 is not a regular file"):
        load_images("cifar10", data_dir=tmp_path)
    assert [p.name for p in tmp_path.rglob("*")] == ["cifar-10-batches-py"]


def test_default_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAO_DATA_DIR", str(tmp_path / "cache"))
    assert im.default_data_dir("cifar10") == tmp_path / "cache" / "cifar10"
    system = tmp_path / "system"
    make_mnist_like(system)
    monkeypatch.setitem(
        DATASETS, "fashion-mnist", dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(system),))
    )
    assert im.default_data_dir("fashion-mnist") == system
    (system / "t10k-labels-idx1-ubyte.gz").unlink()  # an incomplete system copy is not used
    assert im.default_data_dir("fashion-mnist") == tmp_path / "cache" / "fashion-mnist"
    monkeypatch.delenv("NAO_DATA_DIR")
    assert im.default_data_dir("mnist") == Path.home() / ".cache" / "nao" / "mnist"


# ------------------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (idx_bytes(np.zeros((3, 28, 28)), magic=b"\x00\x00\x09\x03"), "magic 00000903"),  # not unsigned bytes
        (idx_bytes(np.zeros(3), magic=b"\x00\x00\x08\x01"), "magic 00000801, expected 00000803"),  # a label file
        (idx_bytes(np.zeros((3, 28, 28)))[:-5], "idx header says"),  # truncated data
        (gzip.compress(idx_bytes(np.zeros((3, 28, 28))))[:-20], "cannot read it"),  # truncated gzip stream
        (b"", "magic empty"),
    ],
)
def test_bad_idx_file_is_named(tmp_path, content, match):
    make_mnist_like(tmp_path, gz=False)
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as err:
        load_images("mnist", data_dir=tmp_path, download=False)
    assert str(bad) in str(err.value)


def test_labels_must_match_images(tmp_path):
    make_mnist_like(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(40, 10), gz=False)
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: label 10 outside 0\.\.9"):
        load_images("mnist", data_dir=tmp_path, download=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(39), gz=False)
    with pytest.raises(DatasetError, match=r"40 images but .* 39 labels"):
        load_images("mnist", data_dir=tmp_path, download=False)


class Boom:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"garbage", "not a CIFAR python batch"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": Boom()}), "refusing to load builtins.print"),
        (pickle.dumps({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}), r"shape \(N, 3072\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "2 integer labels"),
    ],
)
def test_bad_cifar_batch_is_named(tmp_path, capsys, content, match):
    make_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.raises(DatasetError, match=match) as err:
        load_images("cifar10", data_dir=tmp_path, download=False)
    assert str(bad) in str(err.value) and "ran" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- normalize and augment


def test_normalize():
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    out = normalize(x, (0.5, 0.2), (0.5, 0.1))
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([[[[-1.0, 1.0]], [[0.0, 2.0]]]]))


def test_flip_keeps_a_mirror_symmetric_image_and_mirrors_others():
    g = torch.Generator().manual_seed(0)
    half = torch.rand(1, 3, 8, 4, generator=g)
    symmetric = torch.cat([half, half.flip(3)], dim=3).expand(16, -1, -1, -1)
    assert torch.equal(augment(symmetric, generator=g, flip=True), symmetric)
    image = torch.rand(1, 3, 8, 8, generator=g)
    out = augment(image.expand(64, -1, -1, -1), generator=g, flip=True)
    flipped = torch.tensor([torch.equal(o, image[0].flip(2)) for o in out])
    kept = torch.tensor([torch.equal(o, image[0]) for o in out])
    assert (flipped ^ kept).all() and 10 < flipped.sum() < 54


def test_crop_moves_content_by_a_per_image_offset():
    g = torch.Generator().manual_seed(0)
    p, image = 4, torch.rand(1, 3, 16, 16, generator=g) + 0.5  # no zeros but the padding's
    out = augment(image.expand(32, -1, -1, -1), generator=g, crop_padding=p)
    assert out.shape == (32, 3, 16, 16)
    padded = torch.nn.functional.pad(image[0], (p, p, p, p))
    offsets = []
    for o in out:
        found = [
            (dy, dx)
            for dy in range(2 * p + 1)
            for dx in range(2 * p + 1)
            if torch.equal(o, padded[:, dy : dy + 16, dx : dx + 16])
        ]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 10


@pytest.mark.parametrize("size", [8, 5])
def test_cutout_zeroes_one_square_per_image(size):
    g = torch.Generator().manual_seed(0)
    out = augment(torch.ones(64, 3, 32, 32), generator=g, cutout=size)
    inside = 0
    for o in out:
        zero = o == 0  # (C, H, W)
        assert (zero == zero[0]).all()  # the same square in every channel
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert 0 < len(rows) <= size and 0 < len(cols) <= size
        assert zero[0].sum() == len(rows) * len(cols)  # a rectangle (the square clipped at the borders)
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
        touches_border = rows[0] == 0 or rows[-1] == 31 or cols[0] == 0 or cols[-1] == 31
        if not touches_border:
            inside += 1
            assert len(rows) == size and len(cols) == size
    assert inside > 15


def test_augment_is_reproducible_and_leaves_its_input():
    x = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    before = x.clone()

    def run(seed):
        return augment(x, generator=torch.Generator().manual_seed(seed), crop_padding=2, flip=True, cutout=4)

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))
    assert torch.equal(x, before)
    assert torch.equal(augment(x, generator=torch.Generator()), x)


# ---------------------------------------------------------------------------------------------------------- batches


def test_batches_cover_every_index_once_per_epoch():
    n = 37
    x, y = torch.arange(n).view(n, 1, 1, 1).float(), torch.arange(n)
    g = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(2):
        parts = list(batches(x, y, 8, shuffle=True, generator=g))
        assert [len(b[1]) for b in parts] == [8, 8, 8, 8, 5]
        assert all(torch.equal(xb.view(-1).long(), yb) for xb, yb in parts)  # images follow their labels
        order = torch.cat([b[1] for b in parts])
        assert sorted(order.tolist()) == list(range(n))
        epochs.append(order)
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0], y)
    assert torch.equal(torch.cat([b[1] for b in batches(x, y, 8, shuffle=False)]), y)
    assert [len(b[1]) for b in batches(x, y, 8, shuffle=False, drop_last=True)] == [8, 8, 8, 8]
    with pytest.raises(ValueError, match="generator"):
        next(batches(x, y, 8, shuffle=True))


# -------------------------------------------------------------------------------------------- the real Fashion-MNIST

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
# md5s of the decompressed upstream files: Debian recompressed the .gz files, so theirs differ from the README's
RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_the_debian_package():
    data = load_images("fashion-mnist", valid_size=5000, download=False)
    assert isinstance(data, ImageData) and data.shape == (1, 28, 28) and data.n_classes == 10
    assert data.train[0].shape == (55000, 1, 28, 28) and data.valid[0].shape == (5000, 1, 28, 28)
    assert data.test[0].shape == (10000, 1, 28, 28) and data.test[1].shape == (10000,)
    assert torch.equal(torch.bincount(data.test[1]), torch.full((10,), 1000))
    assert data.mean[0] == pytest.approx(0.286, abs=0.001) and data.std[0] == pytest.approx(0.353, abs=0.001)
    for name, md5 in RAW_MD5.items():
        assert hashlib.md5(gzip.decompress((DEBIAN / f"{name}.gz").read_bytes())).hexdigest() == md5
