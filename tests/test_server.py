"""The JSON API, started for real on a free port of 127.0.0.1 and queried over HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest
from conftest import free_port, live_server, run_toolkit

import toolkit
from toolkit.server import create_app

NAMES = ["Hinton", "Schmidhuber", "Nakamura", "Nguyen", "Kowalski", "Rossi", "Dubois", "Papadopoulos"]


@pytest.fixture(scope="module")
def predictor(trained_run):
    return toolkit.load_run(trained_run.run_dir)


@pytest.fixture(scope="module")
def base_url(predictor):
    with live_server(create_app(predictor, max_length=20, max_batch=50)) as url:
        yield url


def expected(predictor, name: str, top: int = 3) -> list[tuple[str, float]]:
    return [(g.label, g.probability) for g in predictor.predict([name], top)[0].guesses]


def got(item: dict) -> list[tuple[str, float]]:
    return [(g["label"], g["probability"]) for g in item["predictions"]]


def assert_same_guesses(actual: list[tuple[str, float]], wanted: list[tuple[str, float]]) -> None:
    """Labels equal in order, probabilities equal up to float rounding (pytest.approx takes
    flat sequences of numbers only since pytest 9.2, not lists of (label, number) pairs)."""
    assert [label for label, _ in actual] == [label for label, _ in wanted]
    assert [p for _, p in actual] == pytest.approx([p for _, p in wanted])


def test_health_labels_and_openapi(base_url, predictor):
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok", "classes": 18, "model": "gru"}
    assert httpx.get(f"{base_url}/labels").json() == {"labels": list(predictor.classes)}
    schema = httpx.get(f"{base_url}/openapi.json").json()
    assert {"/predict/{name}", "/predict", "/explain/{name}", "/explain", "/labels", "/health"} <= set(
        schema["paths"])
    assert "swagger" in httpx.get(f"{base_url}/docs").text.lower()


def test_docs_and_playground_reference_only_the_server(base_url):
    for path in ("/docs", "/"):
        page = httpx.get(f"{base_url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        resources = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        assert resources, path
        assert all(not re.match(r"(https?:)?//", url) for url in resources), resources
        assert "cdn." not in page.text and "validator.swagger.io" not in page.text
        for url in resources:  # and every file it names is served
            assert httpx.get(urljoin(f"{base_url}{path}", url)).status_code == 200, url


def test_playground_shows_the_run_escaped(trained_run, tmp_path):
    import shutil

    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    hostile = "<script>alert(1)</script>"
    for name in ("labels.json", "config.json"):
        (copy / name).write_text((copy / name).read_text().replace("Scottish", hostile))
    app = create_app(toolkit.load_run(copy))
    with live_server(app) as url:
        page = httpx.get(url).text
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    accuracy = trained_run.report.summary.loc["accuracy", "value"]
    assert f'<b id="accuracy">{100 * accuracy:.1f}%</b>' in page
    assert '<b id="model">gru</b>' in page and '<b id="dataset">names</b>' in page


def test_get_and_post_match_predict(base_url, predictor):
    one = httpx.get(f"{base_url}/predict/Hinton", params={"top": 4}).json()
    assert one["input"] == "Hinton"
    assert_same_guesses(got(one), expected(predictor, "Hinton", 4))
    many = httpx.post(f"{base_url}/predict", json={"names": NAMES, "top": 2}).json()["results"]
    assert [r["input"] for r in many] == NAMES
    for item, name in zip(many, NAMES, strict=True):
        assert [label for label, _ in got(item)] == [label for label, _ in expected(predictor, name, 2)]
    bare = httpx.post(f"{base_url}/predict", json=["Rossi"]).json()["results"]
    assert_same_guesses(got(bare[0]), expected(predictor, "Rossi"))


def test_a_name_with_a_slash_is_classified(base_url, predictor):
    answer = httpx.get(f"{base_url}/predict/AC%2FDC")
    assert answer.status_code == 200, answer.text
    assert answer.json()["input"] == "AC/DC"
    assert_same_guesses(got(answer.json()), expected(predictor, "AC/DC"))


def test_a_batch_with_bad_names_says_which_and_why(base_url):
    names = ["Hinton", "y" * 21, "Rossi", "\U0001F600", "  "]
    answer = httpx.post(f"{base_url}/predict", json={"names": names})
    assert answer.status_code == 422
    body = answer.json()
    assert body["detail"].startswith(
        "name 2 of 5 cannot be classified: it has 21 characters; the limit is 20 (and 2 other names"
    )
    assert [bad["index"] for bad in body["invalid"]] == [1, 3, 4]
    assert "normalisation" in body["invalid"][1]["problem"] and body["invalid"][2]["problem"] == "it is empty"


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/predict/" + "x" * 21, None, 422),
    ("POST", "/predict", {"names": []}, 422),
    ("POST", "/predict", {"names": ["a"] * 51}, 413),
    ("POST", "/predict", {"names": ["ok", "y" * 21]}, 422),
    ("POST", "/predict", {"names": ["  "]}, 422),
    ("POST", "/predict", {"names": "Hinton"}, 422),
    ("POST", "/predict", {"names": ["a"], "top": 0}, 422),
])
def test_bad_requests_get_4xx_json(base_url, method, path, body, status):
    response = httpx.request(method, f"{base_url}{path}", json=body)
    assert response.status_code == status
    assert "detail" in response.json()


def test_oversized_or_unsized_bodies_are_refused_before_reading(base_url):
    huge = httpx.post(f"{base_url}/predict", content=b"[" + b'"a",' * 400_000 + b'"a"]',
                      headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "the limit is" in huge.json()["detail"]

    def chunks():
        yield b'["Hinton"]'

    unsized = httpx.post(f"{base_url}/predict", content=chunks(),
                         headers={"content-type": "application/json"})
    assert unsized.status_code == 411 and "Content-Length" in unsized.json()["detail"]


def test_malformed_json_gets_4xx(base_url):
    response = httpx.post(f"{base_url}/predict", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "detail" in response.json()


def test_many_concurrent_requests_all_answered_correctly(base_url, predictor):
    answers = {name: expected(predictor, name)[0][0] for name in NAMES}
    jobs = [NAMES[i % len(NAMES)] for i in range(160)]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda n: client.get(f"{base_url}/predict/{n}"), jobs))
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["predictions"][0]["label"] for r in responses] == [answers[n] for n in jobs]


def test_serve_command_binds_to_localhost(trained_run):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "serve", "--run", str(trained_run.run_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "toolkit serve did not start"
                time.sleep(0.2)
        assert response.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/predict/Nakamura").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
    output = process.stdout.read()
    assert f"Playground: http://127.0.0.1:{port}/" in output and f"http://127.0.0.1:{port}/docs" in output


def test_serve_on_a_busy_port_is_one_line_and_no_url(trained_run):
    with socket.socket() as holder:  # whoever holds the port: toolkit must not point at it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_toolkit(["serve", "--run", str(trained_run.run_dir), "--port", str(port)], timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no Playground URL
    message = f"Error: port {port} on 127.0.0.1 is in use; stop what holds it or choose another --port."
    assert done.stderr == message + "\n"


def test_connections_send_answers_without_waiting_for_the_clients_ack():
    # uvicorn writes a response's head and body in two writes; with Nagle's algorithm on, the body
    # waited for the client's delayed ACK: 40 ms a request. Accepted sockets inherit TCP_NODELAY.
    from toolkit.server import listening_socket

    with listening_socket("127.0.0.1", 0) as server:
        server.listen()
        with socket.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
