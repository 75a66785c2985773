"""The `csv` dataset on CSV and TSV files the tests write."""

from __future__ import annotations

import hashlib

import pytest

import toolkit
from toolkit.datasets import csv_file

WRITERS = (
    "character,writer\n"
    "Hamlet,Shakespeare\n"
    '"Bennet, Elizabeth",Austen\n'
    "\n"
    ",Austen\n"
    "Darcy,\n"
    "Ophelia\n"
    '"Iago ""honest""",Shakespeare\n'
    "   ,Shakespeare\n"
)


def write(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_named_columns_quoting_and_dropped_rows(tmp_path):
    path = write(tmp_path, "writers.csv", WRITERS)
    data = csv_file.load(path=str(path), text_column="character", label_column="writer")
    assert list(zip(data.texts, data.labels(), strict=True)) == [
        ("Hamlet", "Shakespeare"), ("Bennet, Elizabeth", "Austen"), ('Iago "honest"', "Shakespeare"),
    ]
    info = data.provenance
    # Ophelia's row has no label field at all; "   " is an empty text too.
    assert info["dropped"] == {"blank line": 1, "empty text": 2, "empty label": 2}
    assert info["rows"] == 7 and info["total"] == 3
    assert info["sha256"] == {"writers.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert info["source"] == str(path.resolve())
    assert info["options"]["delimiter"] == ","


@pytest.mark.parametrize(("name", "text", "params", "delimiter"), [
    ("titles.tsv", "text\tlabel\nRust 1.80, released\trust\nAsk HN: why?\tnews\n", {}, "\t"),
    ("titles.txt", "text;label\nRust 1.80, released;rust\nAsk HN: why?;news\n", {}, ";"),
    ("titles.csv", "text|label\nRust 1.80, released|rust\nAsk HN: why?|news\n", {}, "|"),
    ("titles.tsv", 'text,label\n"Rust 1.80, released",rust\nAsk HN: why?,news\n',
     {"delimiter": "comma"}, ","),
])
def test_delimiter_by_extension_sniffed_or_given(tmp_path, name, text, params, delimiter):
    data = csv_file.load(path=str(write(tmp_path, name, text)), **params)
    assert data.texts == ("Rust 1.80, released", "Ask HN: why?")
    assert data.labels() == ["rust", "news"]
    assert data.provenance["options"]["delimiter"] == delimiter


def test_bom_crlf_spaces_in_header_and_other_encodings(tmp_path):
    excel = write(tmp_path, "excel.csv", "\ufefftext, label\r\nZoë,a\r\nÅsa, b \r\n")
    data = csv_file.load(path=str(excel))
    assert data.texts == ("Zoë", "Åsa") and data.labels() == ["a", "b"]
    latin = write(tmp_path, "latin.csv", "text,label\nZoë,a\nÅsa,b\n", encoding="latin-1")
    assert csv_file.load(path=str(latin), encoding="latin-1").texts == ("Zoë", "Åsa")
    assert csv_file.load(path=str(excel), normalization="ascii").texts == ("Zoe", "Asa")


def test_listed_and_shown_on_the_cli(cli, tmp_path):
    path = write(tmp_path, "writers.csv", WRITERS)
    assert "csv: Any CSV or TSV file with a text column and a label column." in cli(["datasets"]).stdout
    result = cli(["datasets", "show", "csv", "-p", f"path={path}",
                  "-p", "text_column=character", "-p", "label_column=writer"])
    assert result.exit_code == 0, result.output
    rows = {row.split()[0]: row.split()[1:] for row in result.stdout.splitlines() if row.strip()}
    assert rows["Shakespeare"] == ["2", "2", "0"] and rows["Austen"] == ["1", "1", "0"]
    assert "dropped: 1 blank line, 2 empty text, 2 empty label" in result.stdout


@pytest.mark.parametrize(("text", "params", "message"), [
    (WRITERS, {},
     "has no column 'text' (dataset.text_column). Its columns, split at ',': 'character', 'writer'; "
     "set --param dataset.text_column=NAME or dataset.delimiter."),
    (WRITERS, {"text_column": "character", "label_column": "Writer"},
     "has no column 'Writer' (dataset.label_column). Did you mean 'writer'?"),
    ("", {}, "is empty; it needs a header row (text,label) and one row per item."),
    ("\n  \n", {}, "is empty; it needs a header row (text,label) and one row per item."),
    ("text,label\n", {}, "has a header row but no data rows; add one row per item."),
    ("text,label\n,a\nb,\n", {}, "has no row with both a text and a label (1 empty text, 1 empty label)"),
    ("text,label\nHamlet,Shakespeare\nLear,Shakespeare\n,Austen\n", {},
     "the dataset has a single class 'Shakespeare'; a classifier needs at least two."),
    ("text,label\nHamlet,Shakespeare\nBennet, Elizabeth,Austen\n", {},
     "line 3 of CSV file '{path}' has 3 fields but the header has 2; "
     "quote fields that contain the delimiter"),
    ("text,label,text\na,b,c\n", {}, "has 2 columns named 'text'; rename one."),
    ("text,label\na,b\n", {"label_column": "text"}, "got the same column 'text' for the text and the label"),
    ("text,label\na,b\n", {"encoding": "klingon"}, "unknown encoding 'klingon' for dataset.encoding"),
])
def test_bad_files_are_one_clear_line(cli, tmp_path, text, params, message):
    path = write(tmp_path, "data.csv", text)
    args = ["datasets", "show", "csv", "-p", f"path={path}"]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    result = cli(args)
    assert result.exit_code == 2, result.output
    assert message.format(path=path) in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ")


def test_bad_paths_and_encodings(tmp_path):
    with pytest.raises(toolkit.ToolkitError, match="needs a file: pass --param dataset.path=FILE"):
        csv_file.load()
    with pytest.raises(toolkit.ToolkitError, match="does not exist; check dataset.path"):
        csv_file.load(path=str(tmp_path / "missing.csv"))
    with pytest.raises(toolkit.ToolkitError, match="is not a file"):
        csv_file.load(path=str(tmp_path))
    latin = write(tmp_path, "latin.csv", "text,label\nok,a\nZoë,b\n", encoding="latin-1")
    with pytest.raises(
        toolkit.ToolkitError, match="is not utf-8: bad byte 0xeb on line 3; set --param dataset.encoding"
    ):
        csv_file.load(path=str(latin))
