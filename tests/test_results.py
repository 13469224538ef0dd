"""Results files: each format, and one clear `FILE:LINE: ...` error for each kind of bad input."""

import numpy as np
import pytest

from nao.errors import ArchError, ResultsFileError
from nao.results import Results, load_archs, load_results
from nao.spaces.base import SearchSpace


class TinySpace(SearchSpace):
    """Three ints in 0..3 written "1-2-3" (commas also accepted); the first two commute."""

    name = "tiny"
    seq_len = 3
    vocab_size = 5

    def sample(self, rng):
        return tuple(int(v) for v in rng.integers(0, 4, 3))

    def to_tokens(self, arch):
        return tuple(v + 1 for v in arch)

    def from_tokens(self, tokens):
        return tuple(t - 1 for t in tokens)

    def token_mask(self, prefix):
        return np.arange(self.vocab_size) > 0

    def parse(self, text):
        parts = text.replace(",", "-").split("-")
        if len(parts) != 3 or not all(p.strip() in ("0", "1", "2", "3") for p in parts):
            raise ArchError(f"tiny: bad arch {text!r}")
        return tuple(int(p) for p in parts)

    def format(self, arch):
        return "-".join(map(str, arch))

    def canonical(self, arch):
        return (min(arch[:2]), max(arch[:2]), arch[2])

    def equivalents(self, arch):
        return sorted({arch, (arch[1], arch[0], arch[2])})

    def mutate(self, arch, rng):
        return (arch[0], arch[1], (arch[2] + 1) % 4)


SPACE = TinySpace()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ResultsFileError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- formats -------------------------------------------------------------------------------------


def test_csv_single_metric_picked(tmp_path):
    path = write(tmp_path, "r.csv", "arch,acc,note\n0-1-2,0.5,first\n3-3-3,0.75,x\n")
    res = load_results(path, SPACE)
    assert isinstance(res, Results)
    assert res.archs == [(0, 1, 2), (3, 3, 3)]
    assert res.scores.dtype == np.float64
    assert res.scores.tolist() == [0.5, 0.75]
    assert res.metric == "acc"
    assert res.path == path


def test_csv_quoted_arch_with_commas_and_bom(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('\ufeffarch,acc\n"1,2,3",0.1\n  \n"0,0,0", 2 \n', encoding="utf-8")
    res = load_results(path, SPACE)
    assert res.archs == [(1, 2, 3), (0, 0, 0)]
    assert res.scores.tolist() == [0.1, 2.0]


def test_csv_metric_chosen_among_several(tmp_path):
    path = write(tmp_path, "r.csv", "index,arch,valid_acc,test_acc\n0,0-1-2,90,91\n1,1-1-1,80,85\n")
    res = load_results(path, SPACE, metric="test_acc")
    assert res.scores.tolist() == [91.0, 85.0]
    assert res.metric == "test_acc"
    message = error_of(load_results, path, SPACE)
    assert message.startswith(f"{path}:1:")
    assert "index, valid_acc, test_acc" in message and "--metric" in message


def test_jsonl(tmp_path):
    text = '{"arch": "0-1-2", "acc": 0.5, "tag": "a"}\n\n{"arch": "2-2-2", "acc": 1}\n'
    path = write(tmp_path, "r.jsonl", text)
    res = load_results(path, SPACE)
    assert res.archs == [(0, 1, 2), (2, 2, 2)]
    assert res.scores.tolist() == [0.5, 1.0]
    assert res.metric == "acc"


def test_arch_pool_with_perf(tmp_path):
    pool = write(tmp_path, "arch_pool", "0 - 1 - 2\n3-3-3\n")
    write(tmp_path, "arch_pool.perf", "0.91\n0.5\n")
    res = load_results(pool, SPACE)
    assert res.archs == [(0, 1, 2), (3, 3, 3)]
    assert res.scores.tolist() == [0.91, 0.5]
    assert res.metric == "perf"
    assert load_results(pool, SPACE, metric="perf").scores.tolist() == [0.91, 0.5]
    assert "'perf'" in error_of(load_results, pool, SPACE, metric="acc")


def test_exact_duplicates_merged_keeping_first(tmp_path):
    # "0 - 1 - 2" parses to the same arch as "0-1-2"; 1-0-2 is only equivalent (same canonical form),
    # so it keeps its own row and score, as equivalent cells do in benchmark tables.
    path = write(tmp_path, "r.csv", "arch,acc\n0-1-2,0.5\n3-3-3,0.25\n0 - 1 - 2,0.50\n1-0-2,0.7\n")
    res = load_results(path, SPACE)
    assert res.archs == [(0, 1, 2), (3, 3, 3), (1, 0, 2)]
    assert res.scores.tolist() == [0.5, 0.25, 0.7]


# --- errors --------------------------------------------------------------------------------------


def test_missing_and_empty_file(tmp_path):
    missing = tmp_path / "nope.csv"
    assert error_of(load_results, missing, SPACE).startswith(f"{missing}:")
    empty = write(tmp_path, "e.csv", "\n  \n")
    assert "empty" in error_of(load_results, empty, SPACE)
    assert "empty" in error_of(load_archs, empty, SPACE)
    header_only = write(tmp_path, "h.csv", "arch,acc\n")
    assert error_of(load_results, header_only, SPACE).startswith(f"{header_only}:1: ")


def test_missing_arch_column(tmp_path):
    path = write(tmp_path, "r.csv", "\nname,acc\n0-1-2,0.5\n")
    message = error_of(load_results, path, SPACE)
    assert message.startswith(f"{path}:2: ") and "'arch'" in message and "name, acc" in message
    jsonl = write(tmp_path, "r.jsonl", '{"name": "0-1-2", "acc": 0.5}\n')
    assert error_of(load_results, jsonl, SPACE).startswith(f"{jsonl}:1: ")


def test_unknown_metric_lists_available(tmp_path):
    path = write(tmp_path, "r.csv", "arch,valid_acc,test_acc\n0-1-2,1,2\n")
    message = error_of(load_results, path, SPACE, metric="acc")
    assert message.startswith(f"{path}:1: ") and "'acc'" in message and "valid_acc, test_acc" in message
    no_numeric = write(tmp_path, "n.csv", "arch,note\n0-1-2,good\n")
    assert "numeric" in error_of(load_results, no_numeric, SPACE)


def test_non_numeric_value_line_number(tmp_path):
    # The quoted note spans lines 3-4, so the bad row starts on line 5.
    text = 'arch,acc,note\n0-1-2,0.5,ok\n1-1-1,0.6,"two\nlines"\nx\n'
    path = write(tmp_path, "r.csv", text.replace("\nx\n", "\n2-2-2,high,ok\n"))
    message = error_of(load_results, path, SPACE, metric="acc")
    assert message.startswith(f"{path}:5: ") and "'high'" in message
    blank = write(tmp_path, "b.csv", "arch,acc\n0-1-2,0.5\n1-1-1,\n")
    assert error_of(load_results, blank, SPACE).startswith(f"{blank}:3: ")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_nan_and_inf_rejected(tmp_path, value):
    path = write(tmp_path, "r.csv", f"arch,acc\n0-1-2,0.5\n\n1-1-1,{value}\n")
    message = error_of(load_results, path, SPACE)
    assert message.startswith(f"{path}:4: ") and "NaN" in message


def test_invalid_arch_text_includes_space_message(tmp_path):
    path = write(tmp_path, "r.csv", "arch,acc\n0-1-2,0.5\n0-1-9,0.6\n")
    message = error_of(load_results, path, SPACE)
    assert message == f"{path}:3: unknown arch text '0-1-9' (tiny: bad arch '0-1-9')"
    empty_arch = write(tmp_path, "e.csv", "arch,acc\n ,0.6\n")
    assert error_of(load_results, empty_arch, SPACE).startswith(f"{empty_arch}:2: ")


def test_wrong_field_count_hints_quoting(tmp_path):
    path = write(tmp_path, "r.csv", "arch,acc\n0,1,2,0.5\n")
    message = error_of(load_results, path, SPACE)
    assert message.startswith(f"{path}:2: ") and "quote" in message


def test_conflicting_duplicates_name_both_lines(tmp_path):
    path = write(tmp_path, "r.csv", "arch,acc\n0-1-2,0.5\n3-3-3,0.25\n0-1-2,0.7\n")
    message = error_of(load_results, path, SPACE)
    assert message.startswith(f"{path}:4: ") and "line 2" in message
    assert "0.7" in message and "0.5" in message


def test_jsonl_errors(tmp_path):
    cases = {
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "1-1-1", "acc": 0.5\n': "invalid JSON",
        '{"arch": "0-1-2", "acc": 0.5}\n[1, 2]\n': "JSON object",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": [0, 1, 2], "acc": 0.5}\n': "'arch'",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "1-1-1", "acc": null}\n': "no value",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "1-1-1", "acc": NaN}\n': "NaN",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "1-1-1", "acc": "high"}\n': "not a number",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "1-1-1"}\n': "no value",
        '{"arch": "0-1-2", "acc": 0.5}\n{"arch": "0-1-2", "acc": 0.6}\n': "line 1",
    }
    for text, expected in cases.items():
        path = write(tmp_path, "r.jsonl", text)
        message = error_of(load_results, path, SPACE)
        assert message.startswith(f"{path}:2: ") and expected in message, message


def test_arch_pool_errors(tmp_path):
    pool = write(tmp_path, "arch_pool", "0-1-2\n1-1-1\n2-2-2\n")
    assert "arch_pool.perf" in error_of(load_results, pool, SPACE)  # no .perf beside it

    perf = write(tmp_path, "arch_pool.perf", "0.1\n0.2\n")
    message = error_of(load_results, pool, SPACE)
    assert message.startswith(f"{pool}:3: ") and "arch_pool.perf" in message

    perf.write_text("0.1\n0.2\n0.3\n0.4\n")
    message = error_of(load_results, pool, SPACE)
    assert message.startswith(f"{perf}:4: ")

    perf.write_text("0.1\nbad\n0.3\n")
    assert error_of(load_results, pool, SPACE).startswith(f"{perf}:2: ")

    pool.write_text("0-1-2\n1-1-1\n0-1-2\n")
    perf.write_text("0.1\n0.2\n0.1\n")
    assert load_results(pool, SPACE).archs == [(0, 1, 2), (1, 1, 1)]  # same arch, same score: merged
    perf.write_text("0.1\n0.2\n0.3\n")
    message = error_of(load_results, pool, SPACE)
    assert message.startswith(f"{pool}:3: ") and "line 1" in message

    pool.write_text("0-1-2\nfoo\n2-2-2\n")
    assert error_of(load_results, pool, SPACE).startswith(f"{pool}:2: unknown arch text 'foo'")


# --- load_archs ----------------------------------------------------------------------------------


def test_load_archs_text_file(tmp_path):
    path = write(tmp_path, "archs.txt", "0-1-2\n\n  3-3-3  \n0-1-2\n")
    assert load_archs(path, SPACE) == [(0, 1, 2), (3, 3, 3), (0, 1, 2)]
    bad = write(tmp_path, "bad.txt", "0-1-2\n\n4-4-4\n")
    assert error_of(load_archs, bad, SPACE).startswith(f"{bad}:3: unknown arch text '4-4-4'")


def test_load_archs_from_results_files(tmp_path):
    csv_path = write(tmp_path, "r.csv", "index,arch,valid_acc,test_acc\n0,0-1-2,90,91\n1,1-1-1,,\n")
    assert load_archs(csv_path, SPACE) == [(0, 1, 2), (1, 1, 1)]  # metric columns are not needed
    jsonl = write(tmp_path, "r.jsonl", '{"arch": "2-2-2"}\n{"arch": "0-0-1", "acc": 3}\n')
    assert load_archs(jsonl, SPACE) == [(2, 2, 2), (0, 0, 1)]
    missing = write(tmp_path, "m.csv", "name\n0-1-2\n")
    assert error_of(load_archs, missing, SPACE).startswith(f"{missing}:1: ")
