"""The JSON API: a trained run behind FastAPI.

    GET  /health            is the model loaded
    GET  /labels            the class names
    GET  /predict/{name}    the top classes of one name
    POST /predict           {"names": [...], "top": 3} (or a bare JSON list of names)
    GET  /explain/{name}    why the top class (or ?class=C): character scores and the flip
    POST /explain           {"names": [...], "class": C} (or a bare JSON list of names)
                            both take min_confidence (abstain below it: "abstained") and
                            coverage (conformal prediction sets: "set"), docs/calibration.md;
                            a multi-label run returns each name's label set ("labels", with
                            each label's probability), and takes threshold (0-1) to override its own
    GET  /                  the playground: a page to try names in a browser
    GET  /docs              the OpenAPI page (/openapi.json for the schema), its Swagger UI
                            files served from the installed fastapi-offline package, no CDN

Names longer than `max_length`, names with nothing left after the run's normalisation, and
batches that are empty or larger than `max_batch` get a 4xx JSON error (for bad names, a 422
whose "invalid" lists each one's position and problem, so a client can send the others); so does a malformed
value anywhere (`"top": 1e400` or `NaN` is a 422 that echoes no value back, and the
connection stays open for the next request). A request body is refused before it is read
when its Content-Length is larger than such a batch could be (413), or missing (411).
Forward passes are serialised by the predictor's lock, so concurrent requests are safe.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from toolkit import __version__
from toolkit.errors import ToolkitError
from toolkit.limits import MAX_TEXT_LENGTH
from toolkit.predictor import Predictor
from toolkit.rundir import METRICS, read_json

UNREADABLE = "nothing of it is left after the model's normalisation; send letters it reads"
#: Where the docs page's Swagger UI files are served from.
DOCS_STATIC = "/static/docs"


class Guess(BaseModel):
    label: str
    probability: float
    log_probability: float


class SetMember(BaseModel):
    label: str
    probability: float


class PredictionOut(BaseModel):
    input: str
    predictions: list[Guess]
    abstained: bool | None = Field(None, description="With min_confidence: the top probability is below it.")
    set: list[SetMember] | None = Field(None, description="With coverage: the conformal prediction set.")
    labels: list[SetMember] | None = Field(
        None, description="A multi-label run: the predicted label set, each label with its probability.")


MIN_CONFIDENCE = "Abstain (\"abstained\": true) when the top probability is below this, in [0, 1]."
COVERAGE = "Return each name's prediction set holding the true class with this probability, in (0, 1)."
THRESHOLD = "A multi-label run: predict every class whose probability reaches this, in (0, 1), not the run's."


class BatchIn(BaseModel):
    names: list[str] = Field(description="The names to classify.")
    top: int = Field(3, ge=1, description="How many classes to return per name.")
    min_confidence: float | None = Field(None, ge=0, le=1, description=MIN_CONFIDENCE)
    coverage: float | None = Field(None, gt=0, lt=1, description=COVERAGE)
    threshold: float | None = Field(None, gt=0, lt=1, description=THRESHOLD)


class BatchOut(BaseModel):
    results: list[PredictionOut]


class Attribution(BaseModel):
    char: str
    score: float


class EditOut(BaseModel):
    op: str = Field(description="replace, insert or delete")
    position: int = Field(description="Where, in the model's text after any earlier edit.")
    old: str
    new: str


class FlipOut(BaseModel):
    text: str
    label: str
    probability: float
    edit: list[EditOut]
    description: str


class NgramOut(BaseModel):
    ngram: str
    kind: str
    score: float


class ExplanationOut(BaseModel):
    input: str
    label: str
    probability: float
    attributions: list[Attribution]
    flip: FlipOut | None
    ngrams: list[NgramOut]


class ExplainIn(BaseModel):
    names: list[str] = Field(description="The names to explain.")
    label: str | None = Field(None, alias="class", description="Explain this class, not the top one.")


class ExplainOut(BaseModel):
    results: list[ExplanationOut]


class InvalidNames(Exception):
    """Names of a request that cannot be classified: a 422 whose `detail` says which and why
    in a sentence, and whose `invalid` lists each one as {"index": position in the request,
    "problem": why}, so a client can classify the others."""

    def __init__(self, names: list[str], problems: dict[int, str]) -> None:
        self.invalid = [{"index": i, "problem": problems[i]} for i in sorted(problems)]
        first = self.invalid[0]
        if len(names) == 1:
            self.detail = f"the name cannot be classified: {first['problem']}."
        else:
            others = len(problems) - 1
            more = f" (and {others} other name{'s' if others > 1 else ''}: see 'invalid')" if others else ""
            self.detail = (
                f"name {first['index'] + 1} of {len(names)} cannot be classified: {first['problem']}{more}."
            )
        super().__init__(self.detail)


def create_app(predictor: Predictor, max_length: int = MAX_TEXT_LENGTH, max_batch: int = 1000) -> FastAPI:
    """A FastAPI app serving `predictor`."""
    app = FastAPI(
        title="toolkit prediction API",
        version=__version__,
        description=f"Character-level classification into {len(predictor.classes)} classes.",
        docs_url=None, redoc_url=None,  # the default pages load their files from a CDN
    )
    app.mount(DOCS_STATIC, StaticFiles(directory=_swagger_files()), name="docs-static")

    # The largest body a valid batch needs: each character escaped as \uXXXX, quotes, spacing.
    max_body = max_batch * (max_length * 6 + 16) + 1024

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length", "")
            if not length.isdigit():
                return JSONResponse({"detail": "send the body with a Content-Length header."}, 411)
            if int(length) > max_body:
                return JSONResponse(
                    {"detail": f"the body has {length} bytes; the limit is {max_body}."}, 413
                )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the invalid input, which fails to encode when it is
        # infinite or NaN (a 500 that also dropped the keep-alive connection); say where and what.
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")),
             "type": str(error.get("type", ""))}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, 422)

    @app.exception_handler(InvalidNames)
    async def invalid_names(request: Request, exc: InvalidNames) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "invalid": exc.invalid}, 422)

    def problem(name: str) -> str | None:
        if not name.strip():
            return "it is empty"
        if len(name) > max_length:
            return f"it has {len(name)} characters; the limit is {max_length}"
        return None

    def checked(names: list[str]) -> dict[int, str]:
        """The problem of each name that cannot be sent to the model, by position."""
        if not names:
            raise HTTPException(422, "the batch is empty; send at least one name.")
        if len(names) > max_batch:
            raise HTTPException(413, f"the batch has {len(names)} names; the limit is {max_batch}.")
        return {i: found for i, name in enumerate(names) if (found := problem(name))}

    def run(names: list[str], top: int, **options: float | None) -> list[dict[str, Any]]:
        problems = checked(names)
        threshold = options.get("threshold")
        readable = [i for i in range(len(names)) if i not in problems]
        try:
            predictor.class_thresholds(options.pop("threshold", None))
            predictor.checked_threshold(**options)
        except ToolkitError as exc:  # a run without conformal scores asked for a coverage
            raise HTTPException(422, str(exc)) from None
        if threshold is not None:
            options["threshold"] = threshold
        ranking = predictor.rank([names[i] for i in readable], top, **options) if readable else None
        for i in () if ranking is None else np.flatnonzero(~ranking.read).tolist():
            problems[readable[i]] = UNREADABLE
        if problems or ranking is None:
            raise InvalidNames(names, problems)
        return ranking.dicts()

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            # No badge from the online validator: the page asks nothing of other hosts.
            swagger_ui_parameters={"validatorUrl": None},
        )

    playground = _playground_html(predictor, max_length, max_batch)

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(playground)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "classes": len(predictor.classes),
                "model": predictor.config.get("model", {}).get("name")}

    @app.get("/labels")
    def labels() -> dict[str, list[str]]:
        return {"labels": list(predictor.classes)}

    # `:path`: a name may hold '/' (sent as %2F, which the server decodes before routing).
    @app.get("/predict/{name:path}", response_model=PredictionOut, response_model_exclude_none=True)
    def predict_one(
        name: Annotated[str, Path(description="The name to classify ('/' in it sent as %2F).")],
        top: Annotated[int, Query(ge=1)] = 3,
        min_confidence: Annotated[float | None, Query(ge=0, le=1, description=MIN_CONFIDENCE)] = None,
        coverage: Annotated[float | None, Query(gt=0, lt=1, description=COVERAGE)] = None,
        threshold: Annotated[float | None, Query(gt=0, lt=1, description=THRESHOLD)] = None,
    ) -> dict[str, Any]:
        return run([name], top, min_confidence=min_confidence, coverage=coverage, threshold=threshold)[0]

    @app.post("/predict", response_model=BatchOut, response_model_exclude_none=True)
    def predict_many(body: Annotated[BatchIn | list[str], Body()]) -> dict[str, Any]:
        if isinstance(body, list):
            return {"results": run(body, 3)}
        return {"results": run(body.names, body.top, min_confidence=body.min_confidence,
                               coverage=body.coverage, threshold=body.threshold)}

    def explained(names: list[str], label: str | None) -> list[dict[str, Any]]:
        problems = checked(names)
        if problems:
            raise InvalidNames(names, problems)
        try:
            explanations = predictor.explain(names, label)
        except ToolkitError as exc:  # an unknown class
            raise HTTPException(422, str(exc)) from None
        unread = {i: "nothing of it is left after the model's normalisation; send letters it reads"
                  for i, explanation in enumerate(explanations) if not explanation.label}
        if unread:
            raise InvalidNames(names, unread)
        return [explanation.to_dict() for explanation in explanations]

    @app.get("/explain/{name:path}", response_model=ExplanationOut)
    def explain_one(
        name: Annotated[str, Path(description="The name to explain ('/' in it sent as %2F).")],
        label: Annotated[str | None, Query(alias="class", description="Explain this class.")] = None,
    ) -> dict[str, Any]:
        return explained([name], label)[0]

    @app.post("/explain", response_model=ExplainOut)
    def explain_many(body: Annotated[ExplainIn | list[str], Body()]) -> dict[str, Any]:
        names, label = (body, None) if isinstance(body, list) else (body.names, body.label)
        return {"results": explained(names, label)}

    return app


def _swagger_files() -> str:
    """The folder of Swagger UI's JavaScript and CSS in the installed fastapi-offline package."""
    import fastapi_offline

    return str(FilePath(fastapi_offline.__file__).parent / "static")


def run_summary(predictor: Predictor) -> dict[str, Any]:
    """What the playground shows about the run: model, dataset, classes, test accuracy."""
    config = predictor.config
    accuracy = None
    if predictor.path is not None and (predictor.path / METRICS).is_file():
        try:
            value = read_json(predictor.path / METRICS).get("summary", {}).get("accuracy")
        except (ToolkitError, AttributeError):
            value = None
        valid = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
        accuracy = float(value) if valid else None
    return {
        "model": (config.get("model") or {}).get("name", "?"),
        "dataset": (config.get("dataset") or {}).get("name", "?"),
        "run": predictor.path.name if predictor.path is not None else None,
        "accuracy": accuracy,
        "classes": list(predictor.classes),
    }


def _playground_html(predictor: Predictor, max_length: int, max_batch: int) -> str:
    from toolkit.templating import render

    info = run_summary(predictor)
    title = f"toolkit playground: {info['model']} on {info['dataset']}"
    if info["run"]:
        title = f"{info['run']}: {title}"  # the tab names the run
    return render("playground.html.j2", title=title,
                  info=info, max_length=max_length, max_batch=max_batch)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (0: any free port) for `serve`, as uvicorn binds one,
    so a port in use or an address this machine lacks is one line before anything is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
    # Answers go out at once: uvicorn writes a response's head and body separately, and Nagle's
    # algorithm held the body back until the client's delayed ACK (40 ms a request on Linux).
    # Accepted connections inherit the option from the listening socket.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ToolkitError(_bind_error(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot find the address of --host '{host}' ({exc.strerror}); give an IP address."
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; stop what holds it or choose another --port."
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} (ports below 1024 need root); choose another --port."
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{host} is not an address of this machine; give --host 127.0.0.1 (this machine only) "
                "or 0.0.0.0 (every interface).")
    return f"cannot listen on {host} port {port} ({exc.strerror}); choose another --host or --port."


def serve(predictor: Predictor, host: str = "127.0.0.1", port: int = 5533, max_length: int = MAX_TEXT_LENGTH,
          max_batch: int = 1000, sock: socket.socket | None = None) -> None:
    """Serve `predictor` with uvicorn until interrupted, on `sock` if given (from
    `listening_socket`), else on a socket bound to `host`:`port` here."""
    import uvicorn

    if sock is None:
        sock = listening_socket(host, port)
    app = create_app(predictor, max_length, max_batch)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run exits when the app fails to start; its log says why
