"""The FastAPI app: predictions, feature vectors, health, metrics and the API description.

>>> app = create_app(fs, "delays@production")                                # doctest: +SKIP
>>> # uvicorn.run(app, host="127.0.0.1", port=8000)

Routes (every one except ``/healthz`` and ``/readyz`` needs a token when auth is on):

=========================================  =========  =====================================
``POST /v1/models/{name}/predict``         predict    entities -> predictions (logged)
``POST /v1/feature-views/{name}/{v}/vectors``  read   entities -> feature vectors
``POST /v1/models/{name}/reload``          admin      pick up a new alias target
``GET /metrics``                           read       Prometheus text format
``GET /docs``, ``GET /openapi.json``       any        the API description (Swagger UI
                                                      served from a package, no CDN)
``GET /healthz``, ``GET /readyz``          none       liveness, readiness
=========================================  =========  =====================================
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from fti.errors import NotFoundError
from fti.serving.auth import ANY_SCOPE, TokenStore
from fti.serving.batching import Batcher
from fti.serving.docs import install_docs
from fti.serving.fast_predict import FastPredict
from fti.serving.limits import (
    DEFAULT_READ_TIMEOUT,
    BodyLimitMiddleware,
    Message,
    PathRedactor,
    Receive,
    Scope,
    Send,
)
from fti.serving.limits import install_error_handlers as _install_error_handlers
from fti.serving.log_spool import SpoolLogWriter
from fti.serving.metrics import Metrics
from fti.serving.prediction_log import PredictionLogWriter
from fti.serving.readiness import Readiness
from fti.serving.runtime import LogTarget, ModelRef, PlanGetter, PredictCall, Runtime, Served
from fti.serving.schemas import (
    PredictRequest,
    PredictResponse,
    ReloadResponse,
    VectorsRequest,
    VectorsResponse,
)
from fti.store import FeatureStore, context_of

__all__ = ["PUBLIC_PATHS", "ServerState", "app_from_env", "create_app"]

log = logging.getLogger("fti.serving")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
# Request ids: 32 hex digits, as a uuid4's, made of a random prefix per process and a counter
# (os.urandom per request was a system call; the ids only need to be unique, not secret).
_ID_PREFIX = os.urandom(8).hex()
_request_counter = itertools.count()  # next() on it is atomic: any thread may take an id
ENV_CONFIG = "FTI_SERVE_CONFIG"
T = TypeVar("T")


class ServerState:
    """Everything one app instance owns: runtime, metrics, log writer, tokens."""

    def __init__(
        self,
        runtime: Runtime,
        metrics: Metrics,
        writer: PredictionLogWriter | SpoolLogWriter | None,
        tokens: TokenStore | None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.writer = writer
        self.tokens = tokens
        self.closed = False
        self.fast_answers = 0  # predict requests answered below FastAPI (fast_predict)
        self.readiness = Readiness()  # checks behind /readyz; more can be added
        # One thread does the store and model work of requests: the work holds the GIL, so more
        # threads would only add switches, and one keeps SQLite connections and models to a
        # single thread. Each process (worker) has its own.
        self._work = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fti-work")
        # Predict requests that arrive while the work thread is busy go to it together.
        self.batcher: Batcher[PredictCall, dict[str, Any]] = Batcher(
            self._work, runtime.predict_many
        )

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on the work thread, without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._work, call)

    def close(self) -> None:
        """Flush the prediction log (called on lifespan shutdown, e.g. after SIGTERM)."""
        if self.closed:
            return
        self.closed = True
        self._work.shutdown(wait=True)
        if self.writer is not None:
            self.writer.close()


class _Observe:
    """Outermost ASGI layer: request id, latency and status per route template."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = f"{_ID_PREFIX}{next(_request_counter):016x}"
        scope.setdefault("state", {})["request_id"] = rid
        status = 500

        async def send_wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unrouted"
            self.metrics.observe(label, scope["method"], status, time.perf_counter() - started)


def _auth_dependency(state: ServerState, scope: str) -> Callable[..., Awaitable[None]]:
    bearer = HTTPBearer(auto_error=False, description="A token from: fti token create")

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if state.tokens is None:
            return
        header = None if credentials is None else f"{credentials.scheme} {credentials.credentials}"
        state.tokens.check(header, scope)

    return check


def create_app(
    fs: FeatureStore,
    model_ref: str | ModelRef | None,
    *,
    auth: bool = False,
    allow_missing: bool = False,
    log_predictions: bool = True,
    max_log_queue: int = 100_000,
    loader: Callable[[], Served] | None = None,
    plan_getter: PlanGetter | None = None,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    log_spool: bool = False,
    fast_path: bool = True,
) -> FastAPI:
    """Build the app for ``fs`` serving ``model_ref`` (``NAME``, ``NAME@ALIAS``,
    ``NAME:VERSION``). The model and its feature view are loaded now, so a bad reference fails
    before the server binds a port. ``model_ref=None`` serves feature vectors only.
    ``read_timeout``: seconds a request body may take to arrive (408 after that).
    ``log_spool``: log predictions through a spool folder committed by a child process
    (``fti serve`` does; see :mod:`fti.serving.log_spool`) instead of a thread of this process.
    ``fast_path=False``: every predict request goes through FastAPI (see
    :mod:`fti.serving.fast_predict`; the answers are the same, only slower).

    >>> app = create_app(fti.connect(), "delays@production", auth=True)      # doctest: +SKIP
    """
    from fti.serving import loading

    ref = ModelRef.parse(model_ref) if isinstance(model_ref, str) else model_ref
    metrics = Metrics()
    ctx = context_of(fs)  # the store's backends; the serving layer is part of fti
    writer: PredictionLogWriter | SpoolLogWriter | None = None
    if log_predictions and log_spool:
        cfg = fs.config
        store = {p: str(getattr(cfg, p)) for p in ("root", "offline", "online", "registry")}
        writer = SpoolLogWriter(
            {**store, "artifacts": str(cfg.artifacts)},
            max_queue=max_log_queue,
            on_drop=metrics.log_dropped,
        )
    elif log_predictions:
        writer = PredictionLogWriter(
            LogTarget(ctx), max_queue=max_log_queue, on_drop=metrics.log_dropped
        )
    runtime = Runtime(
        loader or (loading.model_loader(fs, ref) if ref is not None else _no_model),
        plan_getter=plan_getter or loading.plan_getter(fs),
        allow_missing=allow_missing,
        submit_log=writer.submit if writer is not None else None,
    )
    try:
        if ref is not None or loader is not None:
            runtime.load()
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    tokens = TokenStore(ctx) if auth else None
    state = ServerState(runtime, metrics, writer, tokens)
    if ref is not None or loader is not None:
        _add_model_checks(state.readiness, runtime)
        for failure in state.readiness.failures():
            # The server starts anyway (the cause may be fixed while it runs); /readyz says 503.
            log.warning("not ready: %s", failure.reason)
    metrics.gauge(
        "fti_predict_batches_total",
        "Batches of predict requests computed together (requests / batches: the mean size).",
        lambda: float(state.batcher.batches),
    )
    metrics.gauge(
        "fti_predict_batched_requests_total",
        "Predict requests computed in those batches.",
        lambda: float(state.batcher.calls),
    )
    if writer is not None:
        metrics.gauge(
            "fti_prediction_log_queue_depth",
            "Request batches waiting for the prediction log writer.",
            lambda: float(writer.depth()),
        )
        metrics.gauge(
            "fti_prediction_log_written_total",
            "Prediction log rows written since start.",
            lambda: float(writer.written),
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = _ServedApp(
        title="fti model server",
        version="1",
        description="Predictions and feature vectors from an fti feature store.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.fti = state

    def on_error(request: Request, kind: str) -> None:
        route = request.scope.get("route")
        metrics.error(getattr(route, "path", None) or "unrouted", kind)

    public = PathRedactor.for_store(fs.config)
    _install_error_handlers(app, on_error, public)
    # Without auth the routes carry no dependency at all (nothing to solve per request).
    need: dict[str, list[Any]] = {
        s: [Depends(_auth_dependency(state, s))] if auth else []
        for s in ("predict", "read", "admin", ANY_SCOPE)
    }

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: the server is not shutting down, the model is loaded and its inputs can
        be served (feature groups as the registry defines them, one probe lookup each through
        the online store). 503 lists each failed check with its reason."""
        served = runtime.served
        if state.closed:
            reasons = [{"check": "shutdown", "reason": "The server is shutting down."}]
        else:
            reasons = [f.to_dict() for f in await run_in_threadpool(state.readiness.failures)]
        body: dict[str, Any] = {"status": "not ready" if reasons else "ready"}
        if served is not None:
            body.update(model=served.model_name, model_version=served.model_version)
        if reasons:
            body["reasons"] = reasons
            return JSONResponse(body, 503)
        return JSONResponse(body)

    @app.get("/metrics", tags=["health"], dependencies=need["read"])
    async def metrics_route() -> PlainTextResponse:
        """Prometheus metrics (text format 0.0.4)."""
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.post(
        "/v1/models/{name}/predict",
        tags=["models"],
        response_model=PredictResponse,
        response_model_exclude_none=True,
        dependencies=need["predict"],
    )
    async def predict(name: str, body: PredictRequest, request: Request) -> JSONResponse:
        """Predictions for entities, with the features the model was trained with; logged."""
        served = runtime.current()
        if name != served.model_name:
            raise NotFoundError(
                f"This server serves model {served.model_name!r}, not {name!r}. POST to "
                f"/v1/models/{served.model_name}/predict."
            )
        # Store lookups and the model run on the server's work thread, for the requests that
        # arrived together at once: the event loop keeps accepting, parsing and answering.
        out = await state.batcher.submit(
            PredictCall(body.entities, body.request, body.return_features, request.state.request_id)
        )
        metrics.predictions(len(body.entities))
        return _json(out)

    @app.post(
        "/v1/feature-views/{name}/{version}/vectors",
        tags=["feature views"],
        response_model=VectorsResponse,
        response_model_exclude_none=True,
        dependencies=need["read"],
    )
    async def vectors(
        name: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], body: VectorsRequest
    ) -> JSONResponse:
        """Feature vectors from the online store, without a model."""
        out = await state.run(
            partial(
                runtime.vectors,
                name,
                version,
                body.entities,
                body.request,
                training_dataset_version=body.training_dataset_version,
            )
        )
        return _json(out)

    @app.post(
        "/v1/models/{name}/reload",
        tags=["models"],
        response_model=ReloadResponse,
        dependencies=need["admin"],
    )
    async def reload(name: str) -> JSONResponse:
        """Load the model again, e.g. after its alias moved to another version. A model whose
        inputs cannot be served is refused (409 with the reason); the current one keeps
        serving."""
        served = runtime.current()
        if name != served.model_name:
            raise NotFoundError(f"This server serves model {served.model_name!r}, not {name!r}.")
        old, new = await state.run(runtime.reload)
        state.readiness.invalidate()
        log.info(
            "reloaded model %s: version %s -> %s",
            new.model_name,
            None if old is None else old.model_version,
            new.model_version,
        )
        return _json(
            {
                "model": new.model_name,
                "previous_version": None if old is None else old.model_version,
                "model_version": new.model_version,
                "training_dataset_version": new.training_dataset_version,
            }
        )

    @app.get("/openapi.json", include_in_schema=False, dependencies=need[ANY_SCOPE])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    install_docs(app, title="fti model server", dependencies=need[ANY_SCOPE])
    predict_route = next(r for r in app.routes if getattr(r, "name", None) == "predict")
    inner: Callable[[Scope, Receive, Send], Awaitable[None]] = partial(FastAPI.__call__, app)
    if fast_path:
        inner = FastPredict(inner, state=state, route=predict_route, public=public)
    app.fti_outer = _Observe(BodyLimitMiddleware(inner, read_timeout=read_timeout), metrics)
    return app


class _ServedApp(FastAPI):
    """The model server's FastAPI app, with fti's own layers (request id and metrics, body
    limits, the predict fast path) outside FastAPI's middleware stack: a predict request
    answered by the fast path never enters FastAPI (its error and telemetry middlewares cost
    ~30 us per request). The layers handle their own errors."""

    fti_outer: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = self.fti_outer
        if outer is None:
            await super().__call__(scope, receive, send)
        else:
            await outer(scope, receive, send)


def _add_model_checks(readiness: Readiness, runtime: Runtime) -> None:
    """Readiness checks of the served model: loaded, and its inputs servable."""

    def loaded() -> str | None:
        return None if runtime.served is not None else "The model is not loaded yet."

    def inputs() -> str | None:
        problems = runtime.problems()
        if not problems:
            return None
        served = runtime.current()
        return (
            f"Model {served.model_name!r} version {served.model_version} cannot be served: "
            + " ".join(problems)
        )

    def online_store() -> str | None:
        # the online store still holds the served view's feature groups (a lost one is being
        # restored in the background; see services/online_health.py)
        served = runtime.served
        problems = [] if served is None else served.plan.online_problems()
        return " ".join(problems) or None

    readiness.add("model_loaded", loaded)
    readiness.add("model_inputs", inputs)
    readiness.add("online_store", online_store, cached=False)


def _no_model() -> Served:  # pragma: no cover - never called: create_app skips the load
    raise NotFoundError("No model is served.")


def _json(body: dict[str, Any]) -> JSONResponse:
    # Values are already JSON-safe (json_safe); skip FastAPI's re-validation of the response.
    return JSONResponse(body)


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (and ``fti serve --workers N``): reads the
    settings ``fti serve`` put in ``$FTI_SERVE_CONFIG``."""
    # The work thread (lookups, model) and the log spool thread hold the GIL while they run
    # Python; every socket call of the event loop then waits up to the switch interval to get
    # it back (5 ms by default). 0.5 ms bounds that wait.
    sys.setswitchinterval(0.0005)
    # No garbage collection while the app is built (`fti serve` turned it off even earlier):
    # full collections over the growing heap cost ~0.4 s of the start. Then everything loaded
    # (modules, the model, plans), which lives as long as the worker, is frozen out of the
    # collector's sight, so a full collection scans only what requests allocate. Otherwise
    # each one walked the whole heap with the GIL held: pauses of 20-140 ms (the p99 tail).
    gc.disable()
    try:
        app = _app_from_config(json.loads(os.environ[ENV_CONFIG]))
        gc.freeze()
    finally:
        gc.enable()
    return app


def _app_from_config(config: dict[str, Any]) -> FastAPI:
    from fti.serving.workers import exit_with_parent
    from fti.store import connect

    supervisor = config.get("supervisor_pid")
    if supervisor is not None and int(supervisor) != os.getpid():
        exit_with_parent(int(supervisor))  # a worker of `fti serve --workers N`
    fs = connect(config.get("root"))
    return create_app(
        fs,
        config.get("model"),
        auth=bool(config.get("auth", False)),
        allow_missing=bool(config.get("allow_missing", False)),
        log_predictions=bool(config.get("log_predictions", True)),
        read_timeout=float(config.get("read_timeout", DEFAULT_READ_TIMEOUT)),
        log_spool=True,
    )
