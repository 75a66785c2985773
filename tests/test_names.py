"""The `names` dataset on the real 18 files (the copy bundled with the package), and its bad
inputs."""

from __future__ import annotations

import shutil
import zipfile

import pytest

import toolkit
from toolkit.datasets import names

COUNTS = {
    "Arabic": 2000, "Chinese": 268, "Czech": 519, "Dutch": 297, "English": 3668, "French": 277,
    "German": 724, "Greek": 203, "Irish": 232, "Italian": 709, "Japanese": 991, "Korean": 94,
    "Polish": 139, "Portuguese": 74, "Russian": 9408, "Scottish": 100, "Spanish": 298,
    "Vietnamese": 73,
}


@pytest.fixture(scope="module")
def raw():
    return names.load(normalization="raw")  # the default: the bundled copy


def test_real_counts_per_class_and_total(raw):
    assert raw.classes == tuple(sorted(COUNTS))
    assert raw.provenance["counts"] == COUNTS
    assert len(raw) == 20074 == raw.provenance["total"]


def test_the_traps_that_make_naive_evaluation_lie(raw):
    table = toolkit.describe_dataset(raw)
    assert table.loc["Arabic", "lines"] == 2000
    assert table.loc["Arabic", "distinct"] == 108
    assert table.loc["(all)", "distinct"] == 17458
    assert table.loc["(all)", "shared"] == 465


def test_provenance_has_checksums_source_and_licence(raw, names_dir):
    import hashlib

    assert raw.provenance["source"] == str(names_dir.resolve())
    assert raw.provenance["license"] == "BSD-3-Clause"
    assert "pytorch/tutorials" in raw.provenance["origin"]
    assert raw.provenance["normalization"] == "raw"
    assert raw.provenance["loaded_at"].endswith("+00:00")
    first = names_dir / "Arabic.txt"
    assert raw.provenance["sha256"]["Arabic.txt"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert (names_dir / "LICENSE").read_text().startswith("The 18 files in this folder")


def test_bundled_copy_is_byte_identical_to_the_independent_copy(raw, shared_names_dir):
    sums = dict(
        reversed(line.split()) for line in (shared_names_dir / "SHA256SUMS").read_text().splitlines()
    )
    assert raw.provenance["sha256"] == {k: v for k, v in sums.items() if k.endswith(".txt")}


def test_bundled_copy_is_verified_on_every_load(monkeypatch):
    assert set(names.load().provenance["sha256"]) == {f"{k}.txt" for k in names.CONTENT_SHA256}
    monkeypatch.setitem(names.CONTENT_SHA256, "Greek", "0" * 64)
    with pytest.raises(toolkit.ToolkitError) as info:
        names.load()
    message = str(info.value)
    assert message.startswith("the names data bundled with toolkit")
    assert "Greek.txt differs from the recorded content" in message and "reinstall toolkit" in message
    assert "\n" not in message


def _copy_to_cache(names_dir, cache):
    shutil.copytree(names_dir, cache / "names")
    return cache / "names"


def test_downloaded_copy_in_the_cache_is_verified_on_load(tmp_path, monkeypatch, names_dir):
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path))
    copy = _copy_to_cache(names_dir, tmp_path)
    greek = copy / "Greek.txt"
    greek.write_bytes(greek.read_bytes().replace(b"\n", b"\r\n").rstrip(b"\r\n"))  # harmless
    assert names.load().provenance["source"] == str(copy.resolve())
    greek.write_text(greek.read_text(encoding="utf-8").replace("Adamidis", "Adamides"), encoding="utf-8")
    with pytest.raises(toolkit.ToolkitError, match="Greek.txt differs from the recorded content"):
        names.load()


@pytest.mark.parametrize(("mode", "source", "expected"), [
    ("ascii", "Ślusàrski", "Slusarski"),
    ("unidecode", "Ślusàrski", "Slusarski"),
    ("raw", "Ślusàrski", "Ślusàrski"),
    ("ascii", "Straße", "Strae"),
    ("unidecode", "Straße", "Strasse"),
    ("ascii", "Nuñez", "Nunez"),
    ("ascii", "See ", "See"),
    ("raw", "See ", "See "),
])
def test_normalizations(mode, source, expected):
    assert toolkit.normalize(source, mode) == expected


def test_normalizations_on_real_names(names_dir):
    ascii_data = names.load(data_dir=str(names_dir), normalization="ascii")
    translit = names.load(data_dir=str(names_dir), normalization="unidecode")
    raw_texts = set(names.load(data_dir=str(names_dir), normalization="raw").texts)
    assert {"Ślusarski", "Lévêque", "Adlersflügel"} <= raw_texts
    for texts in (set(ascii_data.texts), set(translit.texts)):
        assert {"Slusarski", "Leveque", "Adlersflugel"} <= texts
    assert all(set(t) <= set(toolkit.TUTORIAL_ALPHABET) for t in ascii_data.texts)
    assert len(ascii_data) == len(translit) == 20074  # nothing ends up empty in this data


def test_names_that_end_up_empty_are_dropped_and_counted(tmp_path):
    (tmp_path / "Greek.txt").write_text("Αλέξανδρος\nPapadopoulos\n\n", encoding="utf-8")
    (tmp_path / "Irish.txt").write_text("O'Neill\n", encoding="utf-8")
    data = names.load(data_dir=str(tmp_path), normalization="ascii")
    assert data.texts == ("Papadopoulos", "O'Neill")
    assert data.provenance["dropped"] == {"empty after normalization": 1, "blank line": 1}
    kept = names.load(data_dir=str(tmp_path), normalization="unidecode")
    assert "Alexandros" in kept.texts


def test_data_comes_from_data_dir_then_env_then_cache_then_bundled(tmp_path, monkeypatch, names_dir):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(cache))
    assert names.load().provenance["source"] == str(names_dir.resolve())
    _copy_to_cache(names_dir, cache)
    assert names.load().provenance["source"] == str((cache / "names").resolve())
    other = tmp_path / "other"
    other.mkdir()
    (other / "A.txt").write_text("Smith\n")
    (other / "B.txt").write_text("Rossi\n")
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(other))
    assert names.load().classes == ("A", "B")  # a folder the user names is read as it is
    assert len(names.load(data_dir=str(names_dir.parent))) == 20074  # a folder holding names/


def test_data_dir_may_be_the_tutorial_zip(tmp_path, names_dir):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in names_dir.glob("*.txt"):
            zf.write(file, f"data/names/{file.name}")
        zf.writestr("data/eng-fra.txt", "not a names file\n")
    data = names.load(data_dir=str(archive), normalization="raw")
    assert data.provenance["counts"] == COUNTS


def _error(tmp_path, **kwargs) -> str:
    with pytest.raises(toolkit.ToolkitError) as info:
        names.load(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_inputs_each_get_one_clear_line(tmp_path):
    assert "does not exist" in _error(tmp_path, data_dir=str(tmp_path / "missing"))
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    assert "has no .txt files" in _error(tmp_path, data_dir=str(empty_folder))

    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "A.txt").write_text("Smith\n")
    (blank / "B.txt").write_text("\n\n")
    assert "file 'B.txt' is empty" in _error(tmp_path, data_dir=str(blank))

    latin = tmp_path / "latin"
    latin.mkdir()
    (latin / "A.txt").write_text("Smith\n")
    (latin / "B.txt").write_bytes("Muller\nMüller\n".encode("latin-1"))
    message = _error(tmp_path, data_dir=str(latin))
    assert "file 'B.txt' is not UTF-8" in message and "line 2" in message

    single = tmp_path / "single"
    single.mkdir()
    (single / "Only.txt").write_text("Smith\nJones\n")
    assert "single class 'Only'" in _error(tmp_path, data_dir=str(single))

    wrong_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(wrong_zip, "w") as zf:
        zf.writestr("data/eng-fra.txt", "hello\tbonjour\n")
    assert "has no 'names/' folder" in _error(tmp_path, data_dir=str(wrong_zip))

    not_zip = tmp_path / "fake.zip"
    not_zip.write_text("this is not a zip")
    assert "not a readable zip archive" in _error(tmp_path, data_dir=str(not_zip))


def test_datasets_show_names_on_the_cli(cli, names_dir):
    result = cli(["datasets", "show", "names", "--param", "normalization=raw"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "names: 18 classes, 20074 lines"
    assert f"source: {names_dir.resolve()}" in lines
    assert any(line.startswith("licence: BSD-3-Clause, PyTorch tutorials") for line in lines)
    assert any(line.split() == ["Arabic", "2000", "108", "5"] for line in lines)
    assert any(line.split() == ["(all)", "20074", "17458", "465"] for line in lines)
    assert "dropped: none" in result.stdout


def test_datasets_show_bad_input_is_one_line(cli, tmp_path):
    result = cli(["datasets", "show", "names", "-p", f"data_dir={tmp_path / 'nope'}"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: data folder") and result.stderr.count("\n") == 1
    result = cli(["datasets", "show", "nmaes"])
    assert result.exit_code == 2 and "Did you mean 'names'?" in result.stderr


def test_datasets_path(cli, tmp_path, monkeypatch, names_dir):
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path))
    assert cli(["datasets", "path"]).stdout.strip() == str(tmp_path)
    assert cli(["datasets", "path", "names"]).stdout.strip() == str(names_dir)
    _copy_to_cache(names_dir, tmp_path)
    assert cli(["datasets", "path", "names"]).stdout.strip() == str(tmp_path / "names")


def test_data_dir_may_be_an_unpacked_data_zip(tmp_path, names_dir):
    shutil.copytree(names_dir, tmp_path / "data" / "names")
    data = names.load(data_dir=str(tmp_path), normalization="raw")
    assert data.provenance["source"] == str((tmp_path / "data" / "names").resolve())
    assert len(data) == 20074


def test_a_wrong_toolkit_data_dir_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(tmp_path / "gone"))
    message = _error(tmp_path)
    assert message == f"TOOLKIT_DATA_DIR is set to '{tmp_path / 'gone'}', which does not exist; " \
        "fix the path or unset it (without it the copy bundled with toolkit is used)."


def test_a_zip_with_two_names_folders_is_refused(tmp_path, names_dir):
    archive = tmp_path / "double.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(names_dir / "Greek.txt", "data/names/Greek.txt")
        zf.write(names_dir / "Greek.txt", "backup/names/Greek.txt")
    assert "has two 'Greek.txt' files" in _error(tmp_path, data_dir=str(archive))


def test_load_dataset_is_the_python_twin_of_show(names_dir):
    data = toolkit.load_dataset("names", {"dataset.normalization": "raw", "data_dir": str(names_dir)})
    assert len(data) == 20074 and data.provenance["normalization"] == "raw"
    with pytest.raises(toolkit.ToolkitError, match="has no parameter 'normalisation'"):
        toolkit.load_dataset("names", {"normalisation": "raw"})


def test_a_truncated_copy_of_the_tutorials_files_is_refused_unless_asked(tmp_path, names_dir):
    copy = shutil.copytree(names_dir, tmp_path / "names")
    greek = copy / "Greek.txt"
    greek.write_bytes(b"\n".join(greek.read_bytes().split(b"\n")[:150]))  # cut mid-way
    message = _error(tmp_path, data_dir=str(copy))
    assert message.startswith(f"the names data ({copy}) is not the tutorial's names data: ")
    assert "Greek.txt differs from the recorded content (150 lines, the tutorial's has 203)" in message
    assert "dataset.verify=false" in message
    edited = names.load(data_dir=str(copy), verify=False)
    assert edited.provenance["counts"]["Greek"] == 150 and "license" not in edited.provenance
