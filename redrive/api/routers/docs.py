"""`/docs`: Swagger UI served from the installed `swagger-ui-bundle-v2` package, not a CDN, so the
page renders on a machine without internet (FastAPI's default pulls its script and style from
jsDelivr). ReDoc is off: it has no offline bundle here."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> HTMLResponse:
    """The Swagger UI page, with every asset from this API."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="redrive API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )


def install_docs(app: FastAPI) -> None:
    """Mount the page and its assets on `app` (created with `docs_url=None, redoc_url=None`)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
