"""The REST API: FastAPI app, routers, request/response models and auth."""

from redrive.api.app import create_app

__all__ = ["create_app"]
