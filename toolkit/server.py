"""The JSON API: a trained run behind FastAPI.

    GET  /health            is the model loaded
    GET  /labels            the class names
    GET  /predict/{name}    the top classes of one name
    POST /predict           {"names": [...], "top": 3} (or a bare JSON list of names)
    GET  /docs              the OpenAPI page (/openapi.json for the schema)

Names longer than `max_length` and batches that are empty or larger than `max_batch` get a
4xx JSON error. A request body is refused before it is read when its Content-Length is
larger than such a batch could be (413), or missing (411). Forward passes are serialised by
the predictor's lock, so concurrent requests are safe.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from toolkit import __version__
from toolkit.predictor import Predictor


class Guess(BaseModel):
    label: str
    probability: float
    log_probability: float


class PredictionOut(BaseModel):
    input: str
    predictions: list[Guess]


class BatchIn(BaseModel):
    names: list[str] = Field(description="The names to classify.")
    top: int = Field(3, ge=1, description="How many classes to return per name.")


class BatchOut(BaseModel):
    results: list[PredictionOut]


def create_app(predictor: Predictor, max_length: int = 64, max_batch: int = 1000) -> FastAPI:
    """A FastAPI app serving `predictor`."""
    app = FastAPI(
        title="toolkit prediction API",
        version=__version__,
        description=f"Character-level classification into {len(predictor.classes)} classes.",
    )

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

    def check(names: list[str]) -> None:
        if not names:
            raise HTTPException(422, "the batch is empty; send at least one name.")
        if len(names) > max_batch:
            raise HTTPException(413, f"the batch has {len(names)} names; the limit is {max_batch}.")
        for name in names:
            if not name.strip():
                raise HTTPException(422, "names must not be empty.")
            if len(name) > max_length:
                raise HTTPException(
                    422, f"a name has {len(name)} characters; the limit is {max_length}."
                )

    def run(names: list[str], top: int) -> list[dict[str, Any]]:
        check(names)
        return [p.to_dict() for p in predictor.predict(names, top)]

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "classes": len(predictor.classes),
                "model": predictor.config.get("model", {}).get("name")}

    @app.get("/labels")
    def labels() -> dict[str, list[str]]:
        return {"labels": list(predictor.classes)}

    @app.get("/predict/{name}", response_model=PredictionOut)
    def predict_one(
        name: Annotated[str, Path(description="The name to classify.")],
        top: Annotated[int, Query(ge=1)] = 3,
    ) -> dict[str, Any]:
        return run([name], top)[0]

    @app.post("/predict", response_model=BatchOut)
    def predict_many(body: Annotated[BatchIn | list[str], Body()]) -> dict[str, Any]:
        names, top = (body, 3) if isinstance(body, list) else (body.names, body.top)
        return {"results": run(names, top)}

    return app


def serve(predictor: Predictor, host: str = "127.0.0.1", port: int = 5533,
          max_length: int = 64, max_batch: int = 1000) -> None:
    """Serve `predictor` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(predictor, max_length, max_batch), host=host, port=port, log_level="info")
