"""Annotation server: a browser tool and an HTTP API (CVAT and Label Studio adapters) on one
shared model.

``python -m isegm.serve`` starts it (see :mod:`isegm.serve.__main__`); :func:`create_app` builds
the FastAPI app around a :class:`Service` (model, batching worker, sessions) for tests and
embedding.
"""

from isegm.serve.app import ApiError, ServeConfig, Service, create_app

__all__ = ["ApiError", "ServeConfig", "Service", "create_app"]
