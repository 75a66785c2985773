"""The `folder` dataset on files the test writes."""

from __future__ import annotations

import pytest

import toolkit
from toolkit.datasets import folder


def write(tmp_path, **files: str):
    for label, text in files.items():
        (tmp_path / f"{label}.txt").write_text(text, encoding="utf-8")
    return tmp_path


def test_folder_reads_labels_from_file_names(tmp_path):
    write(tmp_path, cats="Tom\nFelix\n\nGarfield\n", dogs="Rex\nLassie\n")
    data = folder.load(data_dir=str(tmp_path))
    assert data.classes == ("cats", "dogs")
    assert data.labels() == ["cats", "cats", "cats", "dogs", "dogs"]
    assert data.provenance["dropped"] == {"blank line": 1}
    assert set(data.provenance["sha256"]) == {"cats.txt", "dogs.txt"}


def test_folder_is_listed_and_shown(cli, tmp_path):
    write(tmp_path, a="x\ny\ny\n", b="y\nz\n")
    assert "folder: Any folder of <label>.txt files" in cli(["datasets"]).stdout
    result = cli(["datasets", "show", "folder", "-p", f"data_dir={tmp_path}"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert rows["a"] == ["3", "2", "1"] and rows["b"] == ["2", "2", "1"]
    assert rows["(all)"] == ["5", "3", "1"]


def test_folder_bad_inputs(tmp_path, cli):
    with pytest.raises(toolkit.ToolkitError, match="needs a folder: pass --param dataset.data_dir"):
        folder.load()
    with pytest.raises(toolkit.ToolkitError, match="does not exist"):
        folder.load(data_dir=str(tmp_path / "nope"))
    write(tmp_path, only="a\nb\n")
    with pytest.raises(toolkit.ToolkitError, match="single class 'only'"):
        folder.load(data_dir=str(tmp_path))
    write(tmp_path, empty="")
    result = cli(["datasets", "show", "folder", "-p", f"data_dir={tmp_path}"])
    assert result.exit_code == 2
    assert result.stderr == "Error: file 'empty.txt' is empty; put one item per line or remove the file.\n"


def test_line_endings_bom_and_unusual_characters(tmp_path):
    (tmp_path / "win.txt").write_bytes("\ufeffAlpha\r\nBeta\r\n".encode())
    (tmp_path / "odd.txt").write_bytes("one\u2028line\nnext\x85one\n".encode())
    data = folder.load(data_dir=str(tmp_path))
    assert data.labels() == ["odd", "odd", "win", "win"]
    assert data.texts == ("one\u2028line", "next\x85one", "Alpha", "Beta")


@pytest.mark.parametrize(("files", "expected"), [
    ({}, "has no .txt files; it needs one <label>.txt per class."),
    ({"a.txt": b"x\n", "b.txt": b"caf\xe9\n"}, "file 'b.txt' is not UTF-8: bad byte 0xe9 on line 1"),
])
def test_folder_bad_files_on_the_cli(tmp_path, cli, files, expected):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = cli(["datasets", "show", "folder", "--param", f"data_dir={tmp_path}"])
    assert result.exit_code == 2
    assert expected in result.stderr and result.stderr.count("\n") == 1
