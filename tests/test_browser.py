"""The web pages opened in a real headless Chromium, as a user would: the playground at /,
the Swagger UI at /docs, a run's report.html and a comparison page, each checked on what the
browser rendered after its scripts ran, and on every request it made.

The browser cannot reach any host but 127.0.0.1 (its host resolver fails every other name),
so a page that needs a CDN shows up here as a page that does not render.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import live_server

import toolkit
from toolkit.server import create_app

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALL = "install it with `bash .ci/install-browser` (Debian's package: apt-get install chromium)"
#: What Chromium needs to run headless as root in a container, and not to call home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
WIDTH = 1024
#: A phone's width in CSS pixels (an iPhone SE / mini).
PHONE = 375


@contextmanager
def chromium(home: Path) -> Iterator[object]:
    """Headless Chromium with `home` as its home and XDG folders. Playwright gives every launch
    a fresh, temporary profile (--user-data-dir), but Chromium's crash reporter still writes
    $XDG_CONFIG_HOME/chromium (by default $HOME/.config/chromium), and dconf $XDG_CACHE_HOME."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"headless Chromium is not installed; {INSTALL}")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright drives Chromium here; pip install -e '.[test]'"
    )
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local" / "share")}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, env=env
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    with chromium(tmp_path_factory.mktemp("chromium-home")) as browser:
        yield browser


def test_chromium_writes_nothing_to_your_home_folder(tmp_path, monkeypatch):
    home = tmp_path / "your-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    throwaway = tmp_path / "throwaway-home"
    throwaway.mkdir()
    with chromium(throwaway) as browser:
        tab = browser.new_page()
        tab.set_content("<p>rendered</p>")
        assert tab.inner_text("p") == "rendered"
    assert list(home.iterdir()) == []
    assert list(throwaway.iterdir()) != []  # what Chromium writes went here (the check can fail)


class Page:
    """A browser tab (1024 px wide unless told) that records every URL it requests."""

    def __init__(self, browser, width: int = WIDTH) -> None:
        self.tab = browser.new_page(viewport={"width": width, "height": 800})
        self.requests: list[str] = []
        self.tab.on("request", lambda request: self.requests.append(request.url))
        self.errors: list[str] = []
        self.tab.on("pageerror", lambda error: self.errors.append(str(error)))

    def hosts(self) -> set[str]:
        return {urlparse(url).netloc for url in self.requests if not url.startswith(("data:", "file:"))}

    def resource_urls(self) -> list[str]:
        """Every script, stylesheet, image and link the rendered page names, made absolute."""
        return self.tab.evaluate(
            """() => [...document.querySelectorAll('script[src], link[href], img[src], iframe[src]')]
                   .map(e => e.src || e.href)"""
        )

    def overflow(self) -> int:
        """How many pixels the page is wider than the window."""
        width = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        return self.tab.evaluate(width)


@pytest.fixture
def page(browser) -> Iterator[Page]:
    tab = Page(browser)
    yield tab
    tab.tab.close()


@pytest.fixture
def phone(browser) -> Iterator[Page]:
    tab = Page(browser, PHONE)
    yield tab
    tab.tab.close()


@pytest.fixture(scope="module")
def predictor(trained_run):
    return toolkit.load_run(trained_run.run_dir)


@pytest.fixture(scope="module")
def server(predictor) -> Iterator[str]:
    with live_server(create_app(predictor)) as url:
        yield url


def test_playground_shows_japanese_first_for_nakamura(page, server, predictor, trained_run):
    page.tab.goto(f"{server}/")
    page.tab.fill("#name", "Nakamura")  # typed: the page asks the API as the text changes
    page.tab.wait_for_selector("#guesses li")
    labels = page.tab.locator("#guesses li .label").all_inner_texts()
    assert labels[0] == "Japanese"
    assert labels == [g.label for g in predictor.predict(["Nakamura"], 5)[0].guesses]
    accuracy = trained_run.report.summary.loc["accuracy", "value"]
    assert page.tab.inner_text("#accuracy") == f"{100 * accuracy:.1f}%"
    assert page.tab.locator("#classes li").all_inner_texts() == list(predictor.classes)

    hostile = '<img src=x onerror="document.title=1">'
    page.tab.fill("#names", f"Hinton\nSchmidhuber\n{hostile}\n\nNguyen")
    page.tab.click("#classify")
    page.tab.wait_for_selector("#results tbody tr")
    rows = page.tab.locator("#results tbody tr")
    assert rows.count() == 4  # the blank line is skipped
    assert rows.nth(2).locator("td").first.inner_text() == hostile  # shown as text, not markup
    assert page.tab.locator("#results img").count() == 0
    first = predictor.predict(["Schmidhuber"], 3)[0].guesses[0]
    assert rows.nth(1).locator("td").nth(1).inner_text() == f"{first.label} {100 * first.probability:.1f}%"

    page.tab.fill("#name", "x" * 257)  # longer than the server's max_length: its message, shown
    page.tab.wait_for_function("document.getElementById('one-error').textContent.length > 0")
    assert "257 characters" in page.tab.inner_text("#one-error")
    assert page.errors == [] and page.overflow() <= 0
    assert page.hosts() == {urlparse(server).netloc}
    assert all(urlparse(u).netloc == urlparse(server).netloc for u in page.resource_urls())


def test_playground_highlights_the_characters_and_shows_the_flip(page, server, predictor):
    page.tab.goto(f"{server}/?name=Schmidhuber")
    page.tab.wait_for_selector("#why:not([hidden]) #why-chars span")
    [explanation] = predictor.explain(["Schmidhuber"])
    spans = page.tab.locator("#why-chars span")
    assert spans.all_inner_texts() == list("Schmidhuber")
    shown_scores = [float(spans.nth(i).get_attribute("data-score")) for i in range(spans.count())]
    assert shown_scores == pytest.approx([score for _, score in explanation.attributions])
    strongest = max(range(len(shown_scores)), key=lambda i: shown_scores[i])
    colour = spans.nth(strongest).evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(22, 163, 74)"  # the strongest character in full green
    assert page.tab.inner_text("#why-label") == explanation.label
    flip = explanation.flip
    assert flip is not None
    assert page.tab.inner_text("#flip") == (
        f"Smallest change: {flip.to_dict()['description']} \u2192 \u201c{flip.text}\u201d is {flip.label} "
        f"({100 * flip.probability:.1f}%)."
    )
    page.tab.fill("#name", "")
    page.tab.wait_for_selector("#why", state="hidden")
    assert page.errors == [] and page.overflow() <= 0


def test_playground_says_unknown_below_the_minimum_probability(page, server, predictor):
    names = ["Nakamura", "Abel", "Smith", "Lee"]
    confidences = predictor.predict_proba(names).max(axis=1)
    cut = float(sorted(confidences)[1]) + 1e-6  # the two least sure names abstain, the others not
    page.tab.goto(f"{server}/")
    page.tab.fill("#min-confidence", "1")
    page.tab.fill("#name", "Nakamura")
    page.tab.wait_for_selector("#guesses li")
    page.tab.wait_for_selector("#abstained", state="visible")  # nothing is ever 100% sure
    page.tab.fill("#min-confidence", "0")
    page.tab.wait_for_selector("#abstained", state="hidden")
    page.tab.fill("#min-confidence", f"{cut:.8f}")
    page.tab.fill("#names", "\n".join(names))
    page.tab.click("#classify")
    page.tab.wait_for_selector("#results tbody tr")
    firsts = page.tab.locator("#results tbody tr td:nth-child(2)").all_inner_texts()
    assert [text.startswith("unknown (") for text in firsts] == [bool(c < cut) for c in confidences]
    assert sum(text.startswith("unknown (") for text in firsts) == 2
    page.tab.fill("#min-confidence", "2")  # refused by the server, said on the page
    page.tab.click("#classify")
    page.tab.wait_for_function("document.getElementById('many-error').textContent.length > 0")
    assert "between 0 and 1" in page.tab.inner_text("#many-error")
    assert page.errors == []


def test_docs_lists_the_operations_offline(page, server):
    page.tab.goto(f"{server}/docs")
    page.tab.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.tab.locator(".opblock-summary-path").all_inner_texts()
    paths = sorted(p.replace("\u200b", "") for p in paths)  # Swagger UI puts break hints in paths
    assert paths == ["/explain", "/explain/{name}", "/health", "/labels", "/predict", "/predict/{name}"]
    assert page.errors == []
    assert page.hosts() == {urlparse(server).netloc}
    resources = page.resource_urls()
    assert resources and all(urlparse(u).netloc == urlparse(server).netloc for u in resources)


def test_report_shows_every_class_and_fits_1024px(page, trained_run):
    page.tab.goto((trained_run.run_dir / "report.html").as_uri())
    shown = page.tab.locator("#per-class tbody tr td:first-child").all_inner_texts()
    assert sorted(shown) == sorted(trained_run.classes)
    images = page.tab.locator("img")
    assert images.count() == 4  # loss, reliability, accuracy against coverage, confusion
    assert all(w > 100 for w in images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)"))
    assert page.tab.locator(".banner").count() == 0
    looks_at = page.tab.locator("#class-ngrams tbody tr td:first-child").all_inner_texts()
    assert looks_at == list(trained_run.classes)  # what the model looks at, for every class
    assert page.tab.locator("#pair-ngrams tbody tr").count() >= 1
    assert page.overflow() <= 0
    assert page.hosts() == set()  # everything is in the file


def test_interrupted_report_and_comparison_page(page, trained_run, tmp_path, cli):
    import json

    from toolkit.rendering import rerender

    stopped = shutil.copytree(trained_run.run_dir, tmp_path / "stopped")
    config = json.loads((stopped / "config.json").read_text())
    config["training"]["stop_reason"] = "interrupted after 20,000 texts"
    (stopped / "config.json").write_text(json.dumps(config))
    history = (stopped / "history.csv").read_text().splitlines()
    (stopped / "history.csv").write_text("\n".join(history[:2]) + "\n")  # one epoch of two
    page.tab.goto(rerender(stopped).as_uri())
    assert page.tab.locator(".banner").inner_text().startswith("Interrupted after 1 of 2 epochs")

    target = tmp_path / "compare.html"
    result = cli(["compare", str(trained_run.run_dir), str(stopped), "--html", str(target)])
    assert result.exit_code == 0, result.output
    page.tab.goto(target.as_uri())
    shown = page.tab.locator("#per-class tbody tr td:first-child").all_inner_texts()
    assert sorted(shown) == sorted(trained_run.classes)
    runs = page.tab.locator("#overall thead th").all_inner_texts()[1:]
    assert runs == [trained_run.run_dir.name, "stopped"]
    assert "Interrupted after 1 of 2 epochs" in page.tab.inner_text("body")
    assert page.tab.locator("img").evaluate("i => i.naturalWidth") > 100
    assert page.overflow() <= 0
    assert page.hosts() == set()


def test_playground_batch_with_bad_lines_clears_old_results_and_classifies_others(page, server, predictor):
    page.tab.goto(f"{server}/")
    page.tab.fill("#names", "Hinton\nRossi")
    page.tab.click("#classify")
    page.tab.wait_for_selector("#results tbody tr")
    assert page.tab.locator("#results tbody tr").count() == 2

    # Line 2 too long, line 4 nothing left after normalisation, line 5 blank (skipped).
    page.tab.fill("#names", "Nakamura\n" + "x" * 257 + "\nSchmidhuber\n\U0001F600\n\nNguyen")
    page.tab.click("#classify")
    page.tab.wait_for_function("document.querySelectorAll('#results tbody tr').length === 5")
    rows = page.tab.locator("#results tbody tr")
    inputs = [rows.nth(i).locator("td").first.inner_text() for i in range(5)]
    assert inputs == ["Nakamura", "x" * 257, "Schmidhuber", "\U0001F600", "Nguyen"]  # Hinton and Rossi gone
    assert "line 2: it has 257 characters; the limit is 256" in rows.nth(1).inner_text()
    assert "line 4: nothing of it is left after the model's normalisation" in rows.nth(3).inner_text()
    assert page.tab.locator("#results tr.bad").count() == 2
    for index, name in ((0, "Nakamura"), (2, "Schmidhuber"), (4, "Nguyen")):
        first = predictor.predict([name], 3)[0].guesses[0]
        shown = rows.nth(index).locator("td").nth(1).inner_text()
        assert shown == f"{first.label} {100 * first.probability:.1f}%"
    said = page.tab.inner_text("#many-error")
    assert said == "Lines 2, 4 were not classified (see their rows); the others were."
    assert page.errors == []


def test_playground_says_when_the_server_is_down_and_shows_no_old_results(page, predictor):
    with live_server(create_app(predictor)) as url:
        page.tab.goto(f"{url}/")
        page.tab.fill("#names", "Hinton\nRossi")
        page.tab.click("#classify")
        page.tab.wait_for_selector("#results tbody tr")
    page.tab.fill("#names", "Nakamura")  # the server has stopped
    page.tab.click("#classify")
    page.tab.wait_for_function("document.getElementById('many-error').textContent.length > 0")
    assert page.tab.inner_text("#many-error").startswith("Cannot reach the server")
    assert page.tab.locator("#results").is_hidden()
    assert page.tab.locator("#results tbody tr").count() == 0


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_playground_input_borders_stand_out_3_to_1(page, server):
    """WCAG 1.4.11: a text field's border needs 3:1 against what is inside and around it."""
    page.tab.goto(f"{server}/")
    page_background = page.tab.evaluate("getComputedStyle(document.body).backgroundColor")
    for field in ("#name", "#names"):
        style = page.tab.evaluate(
            f"""() => {{ const s = getComputedStyle(document.querySelector('{field}'));
                   return [s.borderTopColor, s.borderTopWidth, s.backgroundColor]; }}"""
        )
        border, width, inside = style
        assert float(width.removesuffix("px")) >= 1
        assert _contrast(border, inside) >= 3 and _contrast(border, page_background) >= 3, (field, border)


def test_pages_fit_a_phone_and_their_titles_name_the_run(phone, server, trained_run, tmp_path, cli):
    name = trained_run.run_dir.name
    phone.tab.goto((trained_run.run_dir / "report.html").as_uri())
    assert phone.overflow() <= 0
    assert phone.tab.title() == f"{name}: gru on names"

    other = shutil.copytree(trained_run.run_dir, tmp_path / "other")
    target = tmp_path / "compare.html"
    assert cli(["compare", str(trained_run.run_dir), str(other), "--html", str(target)]).exit_code == 0
    phone.tab.goto(target.as_uri())
    assert phone.overflow() <= 0
    assert phone.tab.title() == f"2 runs compared: {name}, other"

    phone.tab.goto(f"{server}/")
    assert phone.overflow() <= 0
    assert phone.tab.title() == f"{name}: toolkit playground: gru on names"


def test_comparison_marks_the_better_value_the_difference_and_the_kept_epoch(page, trained_run, tmp_path,
                                                                              cli):
    import json

    worse = shutil.copytree(trained_run.run_dir, tmp_path / "worse")
    metrics = json.loads((worse / "metrics.json").read_text())
    accuracy = metrics["summary"]["accuracy"]
    metrics["summary"]["accuracy"] = accuracy - 0.1
    metrics["summary"]["log_loss"] += 0.5
    (worse / "metrics.json").write_text(json.dumps(metrics))
    target = tmp_path / "compare.html"
    assert cli(["compare", str(trained_run.run_dir), str(worse), "--html", str(target)]).exit_code == 0
    page.tab.goto(target.as_uri())
    overall = page.tab.locator("#overall tbody tr").all()
    rows = {row.locator("th").inner_text(): row.locator("td") for row in overall}
    accuracy_cells, log_loss_cells = rows["accuracy"], rows["log loss"]
    assert accuracy_cells.nth(0).get_attribute("class") == "num best"
    assert accuracy_cells.nth(0).inner_text() == f"{accuracy:.3f} best"
    assert accuracy_cells.nth(1).inner_text() == f"{accuracy - 0.1:.3f} (-0.100)"
    assert log_loss_cells.nth(0).get_attribute("class") == "num best"  # lower is better
    assert "(+0.500)" in log_loss_cells.nth(1).inner_text()
    assert page.tab.locator("#overall td.best").count() == 2  # examples: a count, never "best"
    support = trained_run.report.per_class["support"]
    assert rows["majority-class baseline"].nth(0).inner_text() == (
        f"{support.max() / support.sum():.3f} ({support.idxmax()})"
    )
    assert page.tab.locator("#per-class td.best").count() == 0  # same per-class results: nothing marked
    assert f"Completed 2 of 2 epochs; best: epoch {trained_run.best_epoch}" in page.tab.inner_text("body")


def test_playground_shows_a_multi_label_runs_label_set(page, tmp_path):
    """A multi-label run: the playground shows the predicted set with each label's probability
    (texts in which every tag has its own words, tests/test_multilabel.py); a single-label
    run's page keeps it hidden."""
    from test_multilabel import TAGGED_PARAMS, write_tagged_csv

    path = write_tagged_csv(tmp_path / "tags.csv")
    run = toolkit.run("csv", model="ngram", params={"dataset.path": str(path), **TAGGED_PARAMS},
                      output=tmp_path / "run", progress=False)
    tagged = toolkit.load_run(run.run_dir)
    expected = tagged.predict(["goal song the"])[0].labels
    with live_server(create_app(tagged)) as url:
        page.tab.goto(f"{url}/")
        page.tab.fill("#name", "goal song the")
        page.tab.wait_for_selector("#label-set", state="visible")
        shown = page.tab.inner_text("#label-set-names")
        assert shown == ", ".join(f"{g.label} {100 * g.probability:.1f}%" for g in expected)
        assert {g.label for g in expected} == {"music", "sport"}
    assert page.errors == []


def test_playground_hides_the_label_set_for_a_single_label_run(page, server):
    page.tab.goto(f"{server}/")
    page.tab.fill("#name", "Nakamura")
    page.tab.wait_for_selector("#guesses li")
    assert not page.tab.locator("#label-set").is_visible()
