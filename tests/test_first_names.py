"""`first-names-gender` on the dictionary of the installed gender-guesser package."""

from __future__ import annotations

import hashlib
import importlib.metadata

import pytest
from conftest import labels_by_text
from gender_guesser.detector import Detector

import toolkit
from toolkit.datasets import first_names


@pytest.fixture(scope="module")
def binary() -> toolkit.TextDataset:
    return first_names.load()


def test_default_is_two_plausible_classes_with_known_names(binary):
    counts = binary.provenance["counts"]
    assert binary.classes == ("female", "male")
    assert 15_000 < counts["female"] < 22_000 and 15_000 < counts["male"] < 22_000
    found = labels_by_text(binary)
    assert found["John"] == {"male"} and found["Mary"] == {"female"}
    assert found["Jurgen"] == {"male"} and "Jürgen" not in found  # transliterated
    assert found["Andrea"] == {"female", "male"}  # a cross-class name, kept under both
    assert all(text.isascii() for text in binary.texts)  # unidecode by default


def test_provenance_names_the_installed_file(binary):
    info = binary.provenance
    path = first_names.dictionary_path()
    assert info["sha256"] == {"nam_dict.txt": hashlib.sha256(path.read_bytes()).hexdigest()}
    version = importlib.metadata.version("gender-guesser")
    assert info["package"] == {"name": "gender-guesser", "version": version}
    assert str(path) in info["source"] and info["file"] == str(path)
    assert info["dropped"]["code ? not used by scheme binary"] > 5_000
    assert info["dropped"]["nickname line (=)"] > 500
    assert info["dropped"]["second sort-order copy ('+' in column 30)"] > 1_000
    assert 100 < info["shared_texts"] < 2_000
    assert info["options"]["scheme"] == "binary" and info["loaded_at"].endswith("+00:00")


def test_special_letters_decode_to_real_unicode():
    found = labels_by_text(first_names.load(normalization="raw"))
    assert found["Jürgen"] == {"male"}
    assert found["Zdeněk"] == {"male"}
    assert found["Åse"] == {"female"}
    assert found["Aðalbjörg"] == {"female"}
    assert not any("<" in text or "+" in text for text in found)


def test_schemes_map_the_codes():
    strict, three, detailed = (first_names.load(scheme=s) for s in ("strict", "three-way", "detailed"))
    assert strict.classes == ("female", "male")
    assert three.classes == ("female", "male", "unisex")
    assert detailed.classes == ("female", "male", "mostly_female", "mostly_male", "unisex")
    assert 5_000 < three.provenance["counts"]["unisex"] < 12_000
    # Mary is 1F (female if first part of a name, else mostly female): only strict drops it.
    assert "Mary" not in strict.texts
    assert labels_by_text(detailed)["Mary"] == {"mostly_female"}
    assert labels_by_text(three)["Mary"] == {"female"}
    assert strict.provenance["dropped"]["code ?M not used by scheme strict"] > 100


def test_conflicts_drop_and_majority_agree_with_gender_guesser():
    dropped = first_names.load(conflicts="drop")
    assert dropped.provenance["shared_texts"] == 0 and "Andrea" not in dropped.texts
    assert dropped.provenance["dropped"]["name under several classes"] > 200

    majority = first_names.load(conflicts="majority", normalization="raw")
    answer = dict(zip(majority.texts, majority.labels(), strict=True))
    assert len(answer) == len(majority)  # one class per name
    detector = Detector()
    checked = 0
    for name, label in answer.items():
        guess = detector.get_gender(name)
        if guess in ("male", "female", "mostly_male", "mostly_female"):
            assert guess.removeprefix("mostly_") == label, name
            checked += 1
    assert checked > 30_000
    assert answer["Andrea"] == "female" and answer["Jean"] == "male"


@pytest.mark.parametrize(("joiner", "spellings"), [
    ("space", {"Abdel Aziz"}),
    ("hyphen", {"Abdel-Aziz"}),
    ("none", {"Abdelaziz"}),
    ("all", {"Abdel Aziz", "Abdel-Aziz", "Abdelaziz"}),
])
def test_plus_inside_a_name_is_written_as_the_joiner_says(joiner, spellings):
    found = labels_by_text(first_names.load(joiner=joiner))
    variants = {"Abdel Aziz", "Abdel-Aziz", "Abdelaziz", "AbdelAziz"}
    assert {v for v in variants if v in found} == spellings


HEADER = "# char set = {}\n#\n"


def line(code: str, name: str, marker: str = " ", countries: str = "   4") -> str:
    return f"{code:<3}{name:<26}{marker}{countries:<55}$"


def test_parser_reads_the_fixed_columns_and_skips_what_the_header_says():
    text = HEADER.format("utf-8") + "\n".join([
        line("M", "Jun+Wei"),
        line("?F", "Kim"),
        line("F", "Käte", "-"),
        line("F", "Käte", "+"),
        "=  Abe Abraham                  1                                                     $",
    ])
    entries, skipped = first_names.parse(text, "test")
    assert [(e.code, e.name) for e in entries] == [("M", "Jun+Wei"), ("?F", "Kim"), ("F", "Käte")]
    assert skipped == {"second sort-order copy ('+' in column 30)": 1, "nickname line (=)": 1}
    assert first_names.spellings("Jun+Wei", "all") == ["Jun Wei", "Jun-Wei", "Junwei"]


def test_parser_honours_the_declared_char_set():
    latin1 = (HEADER.format("iso8859-1") + line("F", "Käte")).encode("latin-1")
    assert first_names.parse(first_names.decode(latin1, "test"), "test")[0][0].name == "Käte"
    with pytest.raises(toolkit.ToolkitError, match="is not valid utf-8 .* on line 3"):
        first_names.decode((HEADER.format("utf-8") + line("F", "Käte")).encode("latin-1"), "test")
    with pytest.raises(toolkit.ToolkitError, match="unknown char set 'klingon'"):
        first_names.decode(HEADER.format("klingon").encode(), "test")


@pytest.mark.parametrize(("bad", "message"), [
    (line("X", "Bob"), "line 3 of 'test' is not a dictionary entry"),
    (line("F", "Ha<s^>a"), "spells a letter in the old <..> notation"),
])
def test_parser_refuses_what_it_cannot_read(bad, message):
    with pytest.raises(toolkit.ToolkitError, match=message):
        first_names.parse(HEADER.format("utf-8") + bad, "test")


def test_listed_shown_and_bad_parameters_on_the_cli(cli):
    assert "first-names-gender: First names to gender" in cli(["datasets"]).stdout
    result = cli(["datasets", "show", "first-names-gender", "-p", "scheme=three-way"])
    assert result.exit_code == 0, result.output
    rows = {row.split()[0]: row.split()[1:] for row in result.stdout.splitlines() if row.strip()}
    assert set(rows) >= {"female", "male", "unisex", "(all)"}
    assert "gender-guesser" in result.stdout and "nickname line (=)" in result.stdout
    result = cli(["datasets", "show", "first-names-gender", "-p", "scheme=nonbinary"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: dataset 'first-names-gender' parameter 'scheme' must be one of "
        "binary, strict, three-way, detailed; got 'nonbinary'.\n"
    )
