"""Image classification datasets as uint8 tensors, and batched augmentation on any device.

``load_images(name)`` reads CIFAR-10/100 (the python pickle batches) or Fashion-MNIST / MNIST (idx files, gzipped or
not), downloading the official files when they are missing, and splits a validation set off the official train set.
Pixels stay uint8 ``(N, C, H, W)`` until ``normalize``; ``augment`` (random crop, flip, cutout) works on whole float
batches with tensor ops, so it runs where the batch is (CPU or GPU).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import math
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from http.client import HTTPException
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nao.errors import DatasetError

Split = tuple[torch.Tensor, torch.Tensor]  # images uint8 (N, C, H, W), labels int64 (N,)
Reader = Callable[[Path, "DatasetSpec"], tuple[Split, Split]]

_HINT = "put the files there or pass --data-dir"


@dataclass(frozen=True, kw_only=True)
class ImageData:
    """A dataset split three ways; ``valid`` is carved from the official train set, ``test`` is untouched."""

    name: str
    n_classes: int
    train: Split
    valid: Split
    test: Split
    mean: tuple[float, ...]  # per channel, in [0, 1] units, of the train part
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.train[0].shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Where a dataset's files come from and how to read them."""

    name: str
    n_classes: int
    files: tuple[str, ...]  # the files needed, in the dataset folder
    urls: tuple[str, ...]  # one tarball holding `folder`, or one .gz per file (same order as `files`)
    md5s: tuple[str, ...]  # md5 of each download
    reader: Reader  # (dataset folder, spec) -> (train, test)
    folder: str = ""  # the folder the tarball unpacks to; data_dir may be that folder or its parent
    gzipped: bool = False  # each file may also be present as `<file>.gz`
    system_dirs: tuple[str, ...] = ()  # where an OS package installs the files (used when data_dir is None)

    def display(self, file: str) -> str:
        """A file's name as shown in messages."""
        return f"{file}(.gz)" if self.gzipped else file


# --------------------------------------------------------------------------------------------------------- readers


def read_idx(path: Path, *, ndim: int | None = None) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array.

    Layout: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, one big-endian uint32 per
    dimension, then the data in C order.
    """
    try:
        data = Path(path).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read it ({_one_line(err)})") from err
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or (ndim is not None and data[3] != ndim):
        want = f"000008{ndim:02x}" if ndim is not None else "000008 and the number of dimensions"
        raise DatasetError(
            f"{path}: not an idx file of unsigned bytes (magic {data[:4].hex() or 'empty'}, expected {want})"
        )
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise DatasetError(f"{path}: truncated idx header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=data[3], offset=4))
    if len(data) - header != math.prod(dims):
        raise DatasetError(f"{path}: idx header says {dims} ({math.prod(dims)} bytes) but {len(data) - header} follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _read_idx_pairs(root: Path, spec: DatasetSpec) -> tuple[Split, Split]:
    """(train, test) from the four idx files: train images, train labels, test images, test labels."""

    def pair(images_name: str, labels_name: str) -> Split:
        images_path, labels_path = _find(root, images_name, spec), _find(root, labels_name, spec)
        assert images_path is not None and labels_path is not None  # checked by _ensure_files
        images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)  # (N, H, W), (N,)
        if len(images) != len(labels):
            raise DatasetError(f"{images_path}: {len(images)} images but {labels_path} holds {len(labels)} labels")
        _check_labels(labels, spec, labels_path)
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    train_images, train_labels, test_images, test_labels = spec.files
    return pair(train_images, train_labels), pair(test_images, test_labels)


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only (a pickle can otherwise run any code)."""

    _RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]  # numpy's array rebuilder, wherever this numpy keeps it
    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # pickles written under numpy 1 and 2
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return self._ALLOWED[(module, name)]


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: images uint8 (N, 3, 32, 32) (a 3072 row is the R plane, then G, then B) and labels."""
    try:
        with open(path, "rb") as f:
            batch = _NumpyUnpickler(f, encoding="bytes").load()
        data = batch.get(b"data", batch.get("data"))
        labels = np.asarray(batch.get(label_key, batch.get(label_key.decode())))
    except Exception as err:  # a corrupt pickle raises nearly anything
        raise DatasetError(f"{path}: not a CIFAR python batch ({type(err).__name__}: {_one_line(err)})") from err
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: not a CIFAR python batch (b'data' is not a uint8 array of shape (N, 3072))")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: {len(data)} images but {label_key!r} is not a list of {len(data)} integer labels")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_cifar(root: Path, spec: DatasetSpec, *, label_key: bytes) -> tuple[Split, Split]:
    """(train, test): every file but the last is a train batch, the last is the test batch."""

    def read(names: Sequence[str]) -> Split:
        parts = [read_cifar_batch(root / name, label_key) for name in names]
        for name, (_, labels) in zip(names, parts, strict=True):
            _check_labels(labels, spec, root / name)
        images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)

    return read(spec.files[:-1]), read(spec.files[-1:])


def _check_labels(labels: np.ndarray, spec: DatasetSpec, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= spec.n_classes):
        bad = labels.max() if labels.max() >= spec.n_classes else labels.min()
        raise DatasetError(f"{path}: label {bad} outside 0..{spec.n_classes - 1}")


# -------------------------------------------------------------------------------------------------------- registry

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        name="cifar10",
        n_classes=10,
        folder="cifar-10-batches-py",
        files=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
        urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        md5s=("c58f30108f718f92721af3b95e74349a",),
        reader=partial(_read_cifar, label_key=b"labels"),
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        n_classes=100,
        folder="cifar-100-python",
        files=("train", "test"),
        urls=("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
        md5s=("eb9058c3a382ffc7106e4002c42a8d85",),
        reader=partial(_read_cifar, label_key=b"fine_labels"),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        n_classes=10,
        files=_IDX_FILES,
        urls=tuple(f"{_FASHION_MNIST_URL}{f}.gz" for f in _IDX_FILES),
        md5s=(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        reader=_read_idx_pairs,
        gzipped=True,
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian package dataset-fashion-mnist
    ),
    "mnist": DatasetSpec(
        name="mnist",
        n_classes=10,
        files=_IDX_FILES,
        urls=tuple(f"{_MNIST_URL}{f}.gz" for f in _IDX_FILES),
        md5s=(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        reader=_read_idx_pairs,
        gzipped=True,
    ),
}


# -------------------------------------------------------------------------------------------- locating, download


def default_data_dir(name: str) -> Path:
    """A system copy that holds every file (e.g. Debian's Fashion-MNIST), else ``$NAO_DATA_DIR/<name>``, else
    ``~/.cache/nao/<name>``."""
    spec = _spec(name)
    for system_dir in map(Path, spec.system_dirs):
        if not _missing(spec, system_dir):
            return system_dir
    return cache_dir(name)


def cache_dir(name: str) -> Path:
    """Where a dataset is downloaded to: ``$NAO_DATA_DIR/<name>``, else ``~/.cache/nao/<name>``."""
    parent = os.environ.get("NAO_DATA_DIR") or Path.home() / ".cache" / "nao"
    return Path(parent).expanduser() / name


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def _find(root: Path, file: str, spec: DatasetSpec) -> Path | None:
    for candidate in (root / file, root / f"{file}.gz") if spec.gzipped else (root / file,):
        if candidate.is_file():
            return candidate
    return None


def _missing(spec: DatasetSpec, root: Path) -> list[str]:
    return [f for f in spec.files if _find(root, f, spec) is None]


def _dataset_dir(spec: DatasetSpec, data_dir: Path) -> Path:
    """The folder that holds (or will hold) the files: ``data_dir`` itself, or ``data_dir/<spec.folder>``."""
    if not spec.folder or data_dir.name == spec.folder or _find(data_dir, spec.files[0], spec):
        return data_dir
    return data_dir / spec.folder


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` into the file ``dest`` (the only network access in this module)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(spec: DatasetSpec, url: str, md5: str, dest: Path) -> None:
    """``url`` to ``dest`` through a temporary file, renamed only once its md5 is right (never a half file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _fetch(url, tmp)
        got = _md5(tmp)
        if got != md5:
            raise DatasetError(f"{spec.name}: downloaded {dest.name} from {url} has md5 {got}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _extract(spec: DatasetSpec, archive: Path, root: Path) -> None:
    """Copy the needed members ``<spec.folder>/<file>`` of a tar.gz into ``root``.

    Only regular files with exactly those names are read, and they are written to paths built here, so a hostile
    archive cannot write anywhere else (no links, no absolute or ``..`` paths).
    """
    wanted = {f"{spec.folder}/{f}": f for f in spec.files}
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                file = wanted.get(member.name.removeprefix("./"))
                if file is None or (root / file).exists():
                    continue
                source = tar.extractfile(member) if member.isfile() else None
                if source is None:
                    raise DatasetError(f"{spec.name}: {archive.name}: {member.name} is not a regular file")
                fd, tmp_name = tempfile.mkstemp(prefix=f".{file}.", suffix=".part", dir=root)
                try:
                    with os.fdopen(fd, "wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                    os.replace(tmp_name, root / file)
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DatasetError(f"{spec.name}: {archive}: corrupt archive ({_one_line(err)})") from err


def _ensure_files(spec: DatasetSpec, data_dir: Path, *, download: bool) -> Path:
    """The folder holding every file of ``spec``, downloading what is missing when allowed."""
    root = _dataset_dir(spec, data_dir)
    missing = _missing(spec, root)
    if not missing:
        return root
    where = f"{spec.name}: {spec.display(missing[0])} not found in {root}"
    if not download:
        raise DatasetError(f"{where}; {_HINT}")
    try:
        if spec.folder:  # one tarball holding the whole folder
            archive = data_dir / Path(spec.urls[0]).name
            _download(spec, spec.urls[0], spec.md5s[0], archive)
            try:
                _extract(spec, archive, root)
            finally:
                archive.unlink(missing_ok=True)
        else:
            for file, url, md5 in zip(spec.files, spec.urls, spec.md5s, strict=True):
                if file in missing:
                    _download(spec, url, md5, root / f"{file}.gz")
    except (OSError, HTTPException, ValueError) as err:
        raise DatasetError(f"{where} and download failed ({_one_line(err)}); {_HINT}") from err
    if still := _missing(spec, root):
        raise DatasetError(f"{spec.name}: the download holds no {spec.display(still[0])}; {_HINT} in {root}")
    return root


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


# ------------------------------------------------------------------------------------------------------- loading


def load_images(
    name: str,
    *,
    data_dir: str | Path | None = None,
    valid_size: int = 5000,
    seed: int = 0,
    download: bool = True,
) -> ImageData:
    """Load ``name`` (a key of ``DATASETS``); ``valid_size`` train images, picked by a permutation seeded with
    ``seed``, form the validation split. ``data_dir`` defaults to ``default_data_dir(name)``."""
    spec = _spec(name)
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir(name)
    root = _ensure_files(spec, folder, download=download)
    train, test = spec.reader(root, spec)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DatasetError(
            f"{name}: train images {tuple(train[0].shape[1:])} but test images {tuple(test[0].shape[1:])}"
        )
    train, valid = _split_valid(name, train, valid_size=valid_size, seed=seed)
    mean, std = channel_stats(train[0])
    return ImageData(name=name, n_classes=spec.n_classes, train=train, valid=valid, test=test, mean=mean, std=std)


def _split_valid(name: str, train: Split, *, valid_size: int, seed: int) -> tuple[Split, Split]:
    """(train, valid): ``valid_size`` images of ``train`` chosen by a seeded permutation; both keep file order."""
    images, labels = train
    n = len(labels)
    if not 0 <= valid_size < n:
        raise DatasetError(f"{name}: valid_size must be in 0..{n - 1} (the train set has {n} images), got {valid_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    valid_idx, train_idx = order[:valid_size].sort().values, order[valid_size:].sort().values
    return (images[train_idx], labels[train_idx]), (images[valid_idx], labels[valid_idx])


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images ``(N, C, H, W)`` in [0, 1] units.

    Computed exactly from a 256-bin histogram per channel, so no float copy of the dataset is made.
    """
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)  # (256,)
        mean = (counts * values).sum() / counts.sum()
        var = (counts * (values - mean) ** 2).sum() / counts.sum()
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)


# ------------------------------------------------------------------------------------------ batches, augmentation


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images ``(B, C, H, W)`` (or ``(C, H, W)``) to float32 ``(x / 255 - mean) / std`` per channel."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)  # (C, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return (images.to(torch.float32) / 255 - m) / s


def _randint(high: int, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``n`` integers in ``[0, high)`` drawn on the generator's device, moved to ``device``."""
    return torch.randint(high, (n,), generator=generator, device=generator.device).to(device)


def augment(
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    crop_padding: int = 0,
    flip: bool = False,
    cutout: int = 0,
) -> torch.Tensor:
    """Random crop after zero padding, horizontal flip (p=0.5) and cutout, each image drawn on its own.

    ``images`` is a float batch ``(B, C, H, W)``; the result is a new tensor on the same device. Cutout zeroes a
    ``cutout x cutout`` square centred on a random pixel, clipped at the borders (DeVries & Taylor, 2017).
    """
    if images.dim() != 4:
        raise ValueError(f"augment expects a batch (B, C, H, W), got shape {tuple(images.shape)}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError(f"crop_padding and cutout must be >= 0, got {crop_padding} and {cutout}")
    b, _, h, w = images.shape
    device = images.device
    out = images
    if crop_padding:
        p = crop_padding
        padded = F.pad(images, (p, p, p, p))  # (B, C, H + 2p, W + 2p)
        rows = _randint(2 * p + 1, b, generator, device)[:, None] + torch.arange(h, device=device)  # (B, H)
        cols = _randint(2 * p + 1, b, generator, device)[:, None] + torch.arange(w, device=device)  # (B, W)
        batch = torch.arange(b, device=device)[:, None, None]  # (B, 1, 1)
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)
    if flip:
        flipped = torch.rand(b, generator=generator, device=generator.device).to(device) < 0.5  # (B,)
        out = torch.where(flipped[:, None, None, None], out.flip(3), out)
    if cutout:
        top = _randint(h, b, generator, device) - cutout // 2  # (B,)
        left = _randint(w, b, generator, device) - cutout // 2
        r, c = torch.arange(h, device=device), torch.arange(w, device=device)
        in_rows = (r >= top[:, None]) & (r < top[:, None] + cutout)  # (B, H)
        in_cols = (c >= left[:, None]) & (c < left[:, None] + cutout)  # (B, W)
        out = out.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)  # mask (B, 1, H, W)
    return out if out is not images else images.clone()


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Split]:
    """``(images, labels)`` batches covering the data once; in an order drawn from ``generator`` when ``shuffle``
    (which then needs one: randomness is explicit). Unshuffled batches are views."""
    n = len(labels)
    if len(images) != n:
        raise ValueError(f"{len(images)} images but {n} labels")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield images[start : start + batch_size], labels[start : start + batch_size]
        return
    if generator is None:
        raise ValueError("batches(shuffle=True) needs a generator")
    order = torch.randperm(n, generator=generator, device=generator.device)  # (N,)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield images[idx.to(images.device)], labels[idx.to(labels.device)]
