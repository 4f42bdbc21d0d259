"""The web UI: server-rendered pages (FastAPI + Jinja2) over one feature store.

>>> app = create_ui_app(fti.connect(), auth=True)                            # doctest: +SKIP
>>> # uvicorn.run(app, host="127.0.0.1", port=8080)

Every route except ``POST /login`` needs a token when auth is on (``read`` scope to view,
``admin`` to move a model alias). Templates autoescape everything they print; errors render a
short page without any stack trace (the server log has it).
"""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fti.errors import AuthError, ForbiddenError, FtiError, ValidationError
from fti.services import model_registry
from fti.serving.auth import TokenStore
from fti.store import FeatureStore, context_of
from fti.ui import activity, pages
from fti.ui.graph import MAX_NODES_PER_SIDE, LineageIndex, layout, object_href
from fti.ui.security import COOKIE, Guard, Viewer

__all__ = ["create_ui_app", "served_with_ui"]

log = logging.getLogger("fti.ui")

MAX_FORM_BYTES = 8192
STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}
NAV = [
    ("overview", "/", "Overview"),
    ("groups", "/groups", "Feature groups"),
    ("views", "/views", "Feature views"),
    ("models", "/models", "Models"),
    ("runs", "/runs", "Runs"),
    ("streams", "/streams", "Streams"),
]
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}

Offset = Annotated[int, Query(ge=0, le=10**9)]
Version = Annotated[int, Query(ge=1, le=2**31 - 1)]


def _reader(request: Request) -> Viewer:
    guard: Guard = request.app.state.fti_guard
    return guard.viewer(request, "read")


def _admin(request: Request) -> Viewer:
    guard: Guard = request.app.state.fti_guard
    return guard.viewer(request, "admin")


# Module level, so FastAPI can resolve them from the (postponed) annotations.
Reader = Annotated[Viewer, Depends(_reader)]
Admin = Annotated[Viewer, Depends(_admin)]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fti.ui", "templates"),
        autoescape=True,  # every page is HTML: escape everything printed
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda s: quote(str(s), safe="")
    env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    return env


def create_ui_app(fs: FeatureStore, *, auth: bool = False) -> FastAPI:
    """The UI app for the store ``fs``; ``auth``: require a token (``fti token create``)."""
    ctx = context_of(fs)  # the store's backends; the UI is part of fti
    env = _environment()
    guard = Guard(TokenStore(ctx) if auth else None)
    lineages = LineageIndex(ctx)
    app = FastAPI(
        title="fti ui", docs_url=None, redoc_url=None, openapi_url=None, include_in_schema=False
    )
    app.state.fti_guard = guard

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(
        request: Request, name: str, viewer: Viewer | None, status: int = 200, **data: Any
    ) -> HTMLResponse:
        data.setdefault("page", "")
        html = env.get_template(name).render(
            base=base(request),
            nav=NAV,
            viewer=viewer,
            auth=auth,
            request_path=request.url.path,
            **data,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    # ------------------------------------------------------------------ errors
    def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return render(request, "error.html", None, status, title=title, message=message)

    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError) -> HTMLResponse:
        return render(request, "login.html", None, 401, message=str(exc), next=request.url.path)

    @app.exception_handler(ForbiddenError)
    async def on_forbidden(request: Request, exc: ForbiddenError) -> HTMLResponse:
        return error_page(request, 403, "Not allowed", str(exc))

    @app.exception_handler(FtiError)
    async def on_fti(request: Request, exc: FtiError) -> HTMLResponse:
        status = int(getattr(exc, "http_status", 400))
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
            return error_page(request, status, "Unavailable", "A backend did not answer.")
        return error_page(request, status, "Not found" if status == 404 else "Error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        return error_page(request, 400, "Bad request", f"Invalid value for: {', '.join(fields)}.")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return error_page(request, exc.status_code, "Not found", "There is no such page.")

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_page(
            request, 500, "Internal error", "The page could not be built; the server log has why."
        )

    # ------------------------------------------------------------------ pages
    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, viewer: Reader) -> HTMLResponse:
        return render(request, "overview.html", viewer, page="overview", **activity.overview(ctx))

    @app.get("/groups", response_class=HTMLResponse)
    def groups(request: Request, viewer: Reader, q: str = "", offset: Offset = 0) -> HTMLResponse:
        listing = pages.group_rows(ctx, q=q[:100], offset=offset)
        return render(request, "groups.html", viewer, page="groups", q=q, listing=listing)

    @app.get("/groups/{name}/{version}", response_class=HTMLResponse)
    def group(request: Request, viewer: Reader, name: str, version: int) -> HTMLResponse:
        detail = pages.group_detail(ctx, name, _version(version))
        return render(request, "group.html", viewer, page="groups", g=detail)

    @app.get("/views", response_class=HTMLResponse)
    def views(request: Request, viewer: Reader, q: str = "", offset: Offset = 0) -> HTMLResponse:
        listing = pages.view_rows(ctx, q=q[:100], offset=offset)
        return render(request, "views.html", viewer, page="views", q=q, listing=listing)

    @app.get("/views/{name}/{version}", response_class=HTMLResponse)
    def view(request: Request, viewer: Reader, name: str, version: int) -> HTMLResponse:
        detail = pages.view_detail(ctx, name, _version(version))
        return render(request, "view.html", viewer, page="views", v=detail)

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request, viewer: Reader, q: str = "", offset: Offset = 0) -> HTMLResponse:
        listing = pages.model_names(ctx, q=q[:100], offset=offset)
        return render(request, "models.html", viewer, page="models", q=q, listing=listing)

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model(
        request: Request, viewer: Reader, name: str, sort: str = "version", desc: bool = True
    ) -> HTMLResponse:
        detail = pages.model_detail(ctx, name, sort=sort[:100], desc=desc)
        return render(request, "model.html", viewer, page="models", m=detail, notice=None)

    @app.post("/models/{name}/aliases")
    async def move_alias(request: Request, viewer: Admin, name: str) -> Response:
        form = await _form(request)
        if not guard.csrf_ok(viewer, form.get("csrf", "")):
            return error_page(
                request, 403, "Form expired", "The form's CSRF token is missing or wrong: reload "
                "the model page and submit again."
            )  # fmt: skip
        alias, version = form.get("alias", "").strip(), form.get("version", "")
        if not version.isdigit() or not 1 <= int(version) < 2**31:
            raise ValidationError(f"The version must be a number >= 1. Got {version!r} instead.")
        await run_in_threadpool(model_registry.set_alias, ctx, name, alias, int(version))
        log.info("alias %s@%s -> version %s (by token %s)", name, alias, version, viewer.id)
        return RedirectResponse(f"{base(request)}/models/{quote(name, safe='')}", 303)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(
        request: Request,
        viewer: Reader,
        pipeline: str = "",
        status: str = "",
        offset: Offset = 0,
    ) -> HTMLResponse:
        if status and status not in pages.RUN_STATUSES:
            raise ValidationError(
                f"Unknown run status {status!r}. Use one of {list(pages.RUN_STATUSES)}."
            )
        listing = pages.run_rows(ctx, pipeline=pipeline[:200], status=status, offset=offset)
        query = urlencode({k: v for k, v in (("pipeline", pipeline), ("status", status)) if v})
        return render(
            request,
            "runs.html",
            viewer,
            page="runs",
            listing=listing,
            pipeline=pipeline,
            run_status=status,
            statuses=pages.RUN_STATUSES,
            query=query,
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run(request: Request, viewer: Reader, run_id: str) -> HTMLResponse:
        return render(request, "run.html", viewer, page="runs", r=activity.run_detail(ctx, run_id))

    @app.get("/lineage/{kind}/{name}", response_class=HTMLResponse)
    def lineage(
        request: Request, viewer: Reader, kind: str, name: str, version: int | None = None
    ) -> HTMLResponse:
        graph = lineages.graph(kind, name, None if version is None else _version(version))
        root = graph.root
        return render(
            request,
            "lineage.html",
            viewer,
            page="",
            root=root,
            root_href=object_href(root.kind, root.name, root.version),
            svg=layout(graph),
            max_nodes=MAX_NODES_PER_SIDE,
            files=graph.files("upstream"),
        )

    @app.get("/streams", response_class=HTMLResponse)
    def streams(request: Request, viewer: Reader) -> HTMLResponse:
        return render(
            request, "streams.html", viewer, page="streams", rows=activity.stream_rows(ctx)
        )

    @app.get("/static/{filename}")
    def static(filename: str, viewer: Reader) -> Response:
        if filename not in STATIC:
            raise StarletteHTTPException(404)
        body = (resources.files("fti.ui") / "static" / filename).read_bytes()
        return Response(
            body,
            media_type=STATIC[filename],
            headers={**SECURITY_HEADERS, "cache-control": "private, max-age=300"},
        )

    @app.post("/login")
    async def login(request: Request) -> Response:
        """The one route without a token: it takes one, checks it, keeps it in a cookie."""
        form = await _form(request)
        token, next_path = form.get("token", "").strip(), form.get("next", "/")
        if guard.tokens is not None:
            await run_in_threadpool(guard.tokens.check, f"Bearer {token}", "read")
        root = base(request)
        # only a local path: never redirect to another site
        ok = next_path.startswith("/") and not next_path.startswith("//")
        target = next_path if ok else "/"
        if root and not target.startswith(root + "/") and target != root:
            target = root + target
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=root or "/",
        )
        return response

    return app


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the UI's forms hold a token, an alias and a version)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ValidationError(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=20)
    return {k: v[0] for k, v in fields.items() if v}


def _version(version: int) -> int:
    if version < 1:
        raise ValidationError(f"Versions start at 1. Got {version} instead.")
    return version


def served_with_ui() -> FastAPI:
    """App factory for ``fti serve --ui``: the model server with the UI mounted at ``/ui``
    (same store, same auth setting)."""
    from fti.serving.app import ENV_CONFIG, app_from_env
    from fti.store import connect

    app = app_from_env()
    config = json.loads(os.environ[ENV_CONFIG])
    ui = create_ui_app(connect(config.get("root")), auth=bool(config.get("auth", False)))
    app.mount("/ui", ui)
    return app
