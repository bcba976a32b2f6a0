"""The server's limits and predictor settings (the flags of ``python -m isegm.serve``).

Torch-free: the command line reads the defaults from here while it builds its parser, before
torch, FastAPI and the model code load.
"""

from __future__ import annotations

from dataclasses import dataclass

from isegm.annotation.defaults import DEFAULT_MAX_CLICKS, DEFAULT_MAX_PIXELS

__all__ = ["ServeConfig"]


@dataclass
class ServeConfig:
    """Server limits and predictor settings (command-line flags of ``python -m isegm.serve``)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_sessions: int = 32
    max_memory_bytes: int = 2 * 2**30
    # a session with finished objects is kept this long idle, one with nothing finished less
    session_ttl_s: float = 3600.0
    empty_session_ttl_s: float = 600.0
    # per client (token, or remote address without tokens): API sessions and their memory
    max_client_sessions: int = 8
    max_client_memory_bytes: int = 2**30
    # CVAT / Label Studio sessions: a pool of their own
    max_adapter_sessions: int = 16
    max_adapter_memory_bytes: int = 2**30
    max_clicks: int = DEFAULT_MAX_CLICKS
    token: str | None = None
    tokens: tuple[str, ...] = ()  # more tokens (one per user: the quota is per token)
    # the address bound: with the loopback names, the Host headers accepted
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()  # more Host names ("*": any)
    allowed_origins: tuple[str, ...] = ()  # foreign web origins allowed (CORS)
    # Label Studio task images
    fetch_origins: tuple[str, ...] = ()  # origins fetched besides LABEL_STUDIO_URL's
    fetch_deadline_s: float = 20.0
    fetch_workers: int = 4
    limit_longest_size: int = 800
    zoom_in: bool = True
    refine: str = "none"  # graph-cut refinement of new sessions (python -m isegm.serve: auto)
    threshold: float = 0.5
    max_batch: int = 16
    model_name: str = "model"

    @property
    def all_tokens(self) -> tuple[str, ...]:
        return tuple(t for t in ((self.token,) if self.token else ()) + self.tokens if t)
