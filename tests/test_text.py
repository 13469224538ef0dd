"""Language-modelling corpora: reading tiny files, vocabulary, unknown words, downloads, batching and BPTT windows."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
import zipfile
from pathlib import Path

import pytest
import torch

from nao.errors import DatasetError, UserError
from nao.tasks import images as im
from nao.tasks import text as tx
from nao.tasks.text import CORPORA, Corpus, batchify, load_corpus, variable_length_windows, windows

PTB_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"

TRAIN = "the cat sat\n on the  mat <unk> \n"
VALID = "the dog sat\n"  # "dog" is not in the train file
TEST = "mat\n\ncat the\n"  # an empty line still ends with <eos>
NAMES = ("train.txt", "valid.txt", "test.txt")


def write_corpus(folder: Path, *, train: str = TRAIN, valid: str = VALID, test: str = TEST, names=NAMES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in zip(names, (train, valid, test), strict=True):
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def words(corpus: Corpus, ids: torch.Tensor) -> str:
    """The words of ``ids``, separated by single spaces."""
    return " ".join(corpus.vocab[i] for i in ids.tolist())


def no_network(url: str, dest: Path) -> None:
    raise OSError("no network")


# ------------------------------------------------------------------------------------------------------- reading


def test_vocab_comes_from_train_in_order_and_ids_round_trip(tmp_path):
    corpus = load_corpus("ptb", data_dir=write_corpus(tmp_path), download=False)
    assert corpus.name == "ptb"
    assert corpus.vocab == ("the", "cat", "sat", "<eos>", "on", "mat", "<unk>")
    assert corpus.vocab_size == 7
    assert corpus.index() == {w: i for i, w in enumerate(corpus.vocab)}
    for split in (corpus.train, corpus.valid, corpus.test):
        assert split.dtype == torch.int64 and split.dim() == 1
    assert words(corpus, corpus.train) == "the cat sat <eos> on the mat <unk> <eos>"
    assert words(corpus, corpus.test) == "mat <eos> <eos> cat the <eos>"
    index = corpus.index()
    assert torch.equal(torch.tensor([index[w] for w in words(corpus, corpus.train).split()]), corpus.train)


def test_unknown_word_maps_to_unk_when_the_vocab_has_it(tmp_path):
    corpus = load_corpus("ptb", data_dir=write_corpus(tmp_path), download=False)
    assert words(corpus, corpus.valid) == "the <unk> sat <eos>"


def test_unknown_word_without_unk_names_file_line_and_word(tmp_path):
    folder = write_corpus(tmp_path, train="the cat sat\n", valid="the cat\ncat sat\nthe dog\n", test="cat\n")
    with pytest.raises(DatasetError) as err:
        load_corpus("wikitext-2", data_dir=folder, download=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{folder / 'valid.txt'}:3: word 'dog'")
    assert isinstance(err.value, UserError)


def test_crlf_and_missing_final_newline_read_like_plain_lines(tmp_path):
    corpus = load_corpus("ptb", data_dir=write_corpus(tmp_path, train="a b\r\nb c", valid="c\r\n", test="a"))
    assert words(corpus, corpus.train) == "a b <eos> b c <eos>"
    assert words(corpus, corpus.valid) == "c <eos>" and words(corpus, corpus.test) == "a <eos>"


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("ptb", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")),
        ("wikitext-2", ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens")),
        ("ptb", ("ptb.train.txt", "valid.txt", "ptb.test.txt")),  # the names may be mixed
    ],
)
def test_original_file_names_are_found(tmp_path, name, names):
    corpus = load_corpus(name, data_dir=write_corpus(tmp_path, names=names), download=False)
    assert words(corpus, corpus.valid) == "the <unk> sat <eos>" and corpus.vocab_size == 7


def test_unknown_corpus_lists_the_known_ones():
    with pytest.raises(DatasetError, match=r"unknown corpus 'ptb2'; known: ptb, wikitext-2"):
        load_corpus("ptb2")


def test_empty_train_file_and_bad_encoding_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="train file is empty"):
        load_corpus("ptb", data_dir=write_corpus(tmp_path / "a", train=""), download=False)
    folder = write_corpus(tmp_path / "b")
    (folder / "test.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DatasetError, match=r"test\.txt: cannot read it"):
        load_corpus("ptb", data_dir=folder, download=False)


# ------------------------------------------------------------------------------------------- missing, download


def test_missing_file_without_download(tmp_path):
    folder = write_corpus(tmp_path)
    (folder / "valid.txt").unlink()
    with pytest.raises(DatasetError) as err:
        load_corpus("ptb", data_dir=folder, download=False)
    message = str(err.value)
    assert message == f"ptb: valid.txt (or ptb.valid.txt) not found in {folder}; put the files there or pass --data-dir"


def test_failed_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "_fetch", no_network)  # text downloads through images._download
    for name, first in (("ptb", "train.txt (or ptb.train.txt)"), ("wikitext-2", "train.txt (or wiki.train.tokens)")):
        folder = tmp_path / name
        with pytest.raises(DatasetError) as err:
            load_corpus(name, data_dir=folder)
        message = str(err.value)
        assert message.startswith(f"{name}: {first} not found in {folder} and download failed (no network)")
        assert message.endswith("put the files there or pass --data-dir") and "\n" not in message
        assert list(folder.iterdir()) == []


def test_default_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAO_DATA_DIR", str(tmp_path / "cache"))
    assert tx.default_data_dir("ptb") == tmp_path / "cache" / "ptb"
    write_corpus(tmp_path / "cache" / "ptb")
    assert load_corpus("ptb", download=False).vocab_size == 7
    monkeypatch.delenv("NAO_DATA_DIR")
    assert tx.default_data_dir("wikitext-2") == Path.home() / ".cache" / "nao" / "wikitext-2"


def test_download_of_ptb_files_checks_md5_and_fetches_only_missing(tmp_path, monkeypatch):
    payload = {
        f"https://example.org/ptb.{s}.txt": c.encode() for s, c in zip(tx.SPLITS, (TRAIN, VALID, TEST), strict=True)
    }
    md5s = tuple(hashlib.md5(b).hexdigest() for b in payload.values())
    monkeypatch.setitem(CORPORA, "ptb", dataclasses.replace(CORPORA["ptb"], urls=tuple(payload), md5s=md5s))
    fetched = []
    monkeypatch.setattr(im, "_fetch", lambda url, dest: (fetched.append(url), Path(dest).write_bytes(payload[url])))
    folder = write_corpus(tmp_path / "ptb")
    (folder / "train.txt").unlink()
    (folder / "test.txt").unlink()
    corpus = load_corpus("ptb", data_dir=folder)
    assert fetched == ["https://example.org/ptb.train.txt", "https://example.org/ptb.test.txt"]
    assert words(corpus, corpus.test) == "mat <eos> <eos> cat the <eos>"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)

    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(b"something else"))
    (folder / "valid.txt").unlink()
    with pytest.raises(DatasetError, match=r"valid\.txt from https://example\.org/ptb\.valid\.txt has md5"):
        load_corpus("ptb", data_dir=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["test.txt", "train.txt"]


def test_download_of_wikitext_zip_extracts_only_the_splits(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for split, content in zip(tx.SPLITS, (TRAIN, VALID, TEST), strict=True):
            zf.writestr(f"wikitext-2/wiki.{split}.tokens", content)
        zf.writestr("../evil", "evil")
    archive = buffer.getvalue()
    spec = dataclasses.replace(CORPORA["wikitext-2"], md5s=(hashlib.md5(archive).hexdigest(),))
    monkeypatch.setitem(CORPORA, "wikitext-2", spec)
    monkeypatch.setattr(im, "_fetch", lambda url, dest: Path(dest).write_bytes(archive))
    corpus = load_corpus("wikitext-2", data_dir=tmp_path / "data" / "wt2")
    assert words(corpus, corpus.valid) == "the <unk> sat <eos>"
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["wt2"]  # nothing outside, zip removed
    assert sorted(p.name for p in (tmp_path / "data" / "wt2").iterdir()) == sorted(NAMES)


# ------------------------------------------------------------------------------------------------------- batching


def test_batchify_columns_are_contiguous_chunks():
    tokens = torch.arange(23)
    stream = batchify(tokens, 4)
    assert stream.shape == (5, 4) and stream.is_contiguous()
    for b in range(4):
        assert torch.equal(stream[:, b], tokens[5 * b : 5 * b + 5])
    assert torch.equal(batchify(tokens, 1)[:, 0], tokens)
    with pytest.raises(ValueError, match="cannot fill"):
        batchify(torch.arange(3), 4)
    with pytest.raises(ValueError, match="batch_size"):
        batchify(tokens, 0)


@pytest.mark.parametrize(("rows", "bptt", "start"), [(11, 3, 0), (11, 5, 0), (10, 35, 0), (12, 4, 2), (2, 1, 0)])
def test_windows_cover_every_position_once_with_shifted_targets(rows, bptt, start):
    stream = batchify(torch.arange(rows * 3), 3)  # (rows, 3)
    seen = []
    pairs = list(windows(stream, bptt, start=start))
    for inputs, targets in pairs:
        assert inputs.shape == targets.shape and inputs.shape[1] == 3
        assert torch.equal(targets, inputs + 1)  # the stream counts up along each column
        seen.extend(inputs[:, 0].tolist())
    assert seen == list(range(start, rows - 1))
    assert all(len(x) == bptt for x, _ in pairs[:-1]) and 1 <= len(pairs[-1][0]) <= bptt


def test_variable_length_windows_are_seeded_bounded_and_contiguous():
    stream = batchify(torch.arange(2000 * 2), 2)  # (2000, 2)

    def run(seed: int, **kw) -> list[int]:
        lengths, position = [], 0
        for inputs, targets, length in variable_length_windows(
            stream, 20, generator=torch.Generator().manual_seed(seed), **kw
        ):
            assert inputs.shape == targets.shape == (length, 2)
            assert inputs[0, 0] == position and torch.equal(targets, inputs + 1)
            position += length
            lengths.append(length)
        assert position == len(stream) - 1
        return lengths

    lengths = run(0)
    assert lengths == run(0) and lengths != run(1)
    assert all(5 <= n <= 40 for n in lengths[:-1]) and len(set(lengths)) > 5
    assert 16 <= sum(lengths) / len(lengths) <= 22  # mostly around bptt, sometimes around bptt / 2
    assert set(run(0, std=0.0, short_prob=0.0)[:-1]) == {20}
    assert set(run(0, std=0.0, short_prob=1.0)[:-1]) == {10}
    assert set(run(0, std=100.0, max_extra=3, min_len=7)[:-1]) <= set(range(7, 24))


# ----------------------------------------------------------------------------------------------------- real data


@pytest.mark.skipif(not (PTB_DIR / "train.txt").is_file(), reason=f"no Penn Treebank at {PTB_DIR}")
def test_real_ptb():
    begin = time.perf_counter()
    corpus = load_corpus("ptb", data_dir=PTB_DIR, download=False)
    assert time.perf_counter() - begin < 3
    assert corpus.vocab_size == 10000 and "<unk>" in corpus.index() and "<eos>" in corpus.index()
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (929_589, 73_760, 82_430)
    assert words(corpus, corpus.train[:10]) == (
        "aer banknote berlitz calloway centrust cluett fromstein gitano guterman hydro-quebec"
    )
