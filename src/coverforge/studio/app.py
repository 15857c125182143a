"""The studio application: four pages over the JSON API, static files and the bundled fonts.

Pages are Jinja2 templates that render the page's frame and choices (configs, layouts,
samplers); the scripts in static/ call the API for everything else, so what a page can do, a
script can do with curl.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from coverforge.errors import CoverforgeError
from coverforge.studio.api import router
from coverforge.studio.generation import Models
from coverforge.studio.jobs import JobManager
from coverforge.studio.security import LOOPBACK_NAMES, Guard
from coverforge.studio.workspace import NotFound, OutsideWorkspace, Workspace

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
PAGES = {"runs": "Runs", "generate": "Generate", "cover": "Cover", "compare": "Compare"}


@dataclass
class StudioState:
    ws: Workspace
    jobs: JobManager
    models: Models


def create_app(workspace: str | Path, token: str | None = None, allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES) -> FastAPI:
    """The app over `workspace`. `token`: required on every request when given. `allowed_hosts`:
    Host names accepted (loopback names by default; None accepts any, for non-loopback binds)."""
    ws = Workspace(workspace)
    state = StudioState(ws, JobManager(ws), Models(ws))

    @asynccontextmanager
    async def lifespan(_app):
        yield
        state.jobs.shutdown()  # trainings get SIGTERM and write their checkpoint

    app = FastAPI(title="coverforge studio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.studio = state
    app.middleware("http")(Guard(token, allowed_hosts))
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    from coverforge.covers.fonts import ASSET_DIR

    app.mount("/fonts", StaticFiles(directory=ASSET_DIR), name="fonts")
    templates = Jinja2Templates(directory=HERE / "templates")
    _add_error_handlers(app)

    def page(name: str):
        def render(request: Request) -> HTMLResponse:
            from coverforge.config import SAMPLERS
            from coverforge.studio.typesetting import layouts

            return templates.TemplateResponse(request, f"{name}.html", {
                "page": name, "pages": PAGES, "workspace": str(ws.root), "samplers": SAMPLERS, "layouts": layouts(),
            })
        return render

    app.get("/", response_class=HTMLResponse, include_in_schema=False)(page("runs"))
    for name in PAGES:
        app.get(f"/{name}", response_class=HTMLResponse, include_in_schema=False)(page(name))
    return app


def _error_line(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line naming the field: 'steps: Input should be less than or equal to 200'."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoverforgeError)
    async def user_mistake(_request: Request, exc: CoverforgeError) -> JSONResponse:
        status = 403 if isinstance(exc, OutsideWorkspace) else 404 if isinstance(exc, NotFound) else 400
        return JSONResponse({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _error_line(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("studio: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the studio's log has the details"}, status_code=500)
