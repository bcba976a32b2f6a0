"""``python -m isegm.serve``: start the annotation server (page at ``/``, API docs at
``/docs``).

The flags are parsed and checked before torch, FastAPI and the model code load, so ``--help``
and a bad flag answer in about an interpreter start (the defaults come from the torch-free
:mod:`isegm.serve.config` and :mod:`isegm.annotation.defaults`)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence

from isegm.annotation.defaults import DEFAULT_CHECKPOINT, resolve_refine
from isegm.annotation.errors import InputError
from isegm.inference.backends_cli import add_precision_arguments, check_precision
from isegm.inference.refine import add_refine_argument
from isegm.serve.config import ServeConfig
from isegm.serve.fetch import FetchError, normalize_origin
from isegm.utils.cli import ArgumentParser

__all__ = ["build_parser", "main"]

logger = logging.getLogger("isegm.serve")


def build_parser() -> argparse.ArgumentParser:
    d = ServeConfig()
    p = ArgumentParser(
        prog="python -m isegm.serve",
        description="Annotation server: browser tool at /, JSON API (docs at /docs), CVAT and "
        "Label Studio adapters, one shared model.",
    )
    p.add_argument("--checkpoint", help=f"model checkpoint (default: {DEFAULT_CHECKPOINT})")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--cpu", action="store_true", help="run on the CPU")
    dev.add_argument("--gpu", type=int, metavar="N", help="run on CUDA device N")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads for inference")
    p.add_argument(
        "--token", action="append", help="require 'Authorization: Bearer TOKEN' on every "
        "endpoint (open the page once as /?token=TOKEN: a cookie then holds it); give it once "
        "per user for per-user quotas"
    )
    p.add_argument("--allow-no-token", action="store_true",
                   help="allow a non-loopback --host without --token (anyone who reaches the "
                   "port can then use the server)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name the server answers to besides --host and localhost "
                   "(DNS rebinding guard; '*' for any)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (https://app.example) whose pages may call the API (CORS)")
    p.add_argument("--fetch-origin", action="append", default=[], metavar="ORIGIN",
                   help="an origin Label Studio task images are fetched from besides "
                   "LABEL_STUDIO_URL's")
    p.add_argument("--fetch-timeout", type=float, default=d.fetch_deadline_s,
                   help="total seconds one task image download may take (20)")
    p.add_argument("--fetch-workers", type=int, default=d.fetch_workers,
                   help="concurrent task image downloads at most; more get 503 (4)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 2**20,
                   help="largest accepted upload in MiB (20)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels,
                   help="largest accepted image in pixels (25000000)")
    p.add_argument("--max-sessions", type=int, default=d.max_sessions,
                   help="live sessions at most (32)")
    p.add_argument("--max-memory-mb", type=float, default=d.max_memory_bytes / 2**20,
                   help="memory of all API sessions at most (2048); sessions with nothing "
                   "finished are dropped for room, finished work never")
    p.add_argument("--session-ttl", type=float, default=d.session_ttl_s,
                   help="seconds an idle session with finished objects is kept (3600)")
    p.add_argument("--empty-session-ttl", type=float, default=d.empty_session_ttl_s,
                   help="seconds an idle session with nothing finished is kept (600)")
    p.add_argument("--max-client-sessions", type=int, default=d.max_client_sessions,
                   help="API sessions per client (token, else address) at most (8)")
    p.add_argument("--max-client-memory-mb", type=float,
                   default=d.max_client_memory_bytes / 2**20,
                   help="memory of one client's sessions at most (1024)")
    p.add_argument("--max-adapter-sessions", type=int, default=d.max_adapter_sessions,
                   help="CVAT / Label Studio sessions at most, a pool of their own (16)")
    p.add_argument("--max-batch", type=int, default=d.max_batch,
                   help="clicks of different sessions batched in one forward at most (16)")
    p.add_argument("--limit-longest-size", type=int, default=d.limit_longest_size,
                   help="downscale larger images for the network (800)")
    p.add_argument("--zoom-in", action=argparse.BooleanOptionalAction, default=True,
                   help="zoom in on the object after the first click (on)")
    add_refine_argument(parser=p)  # the sessions' default; a session or a click may change it
    add_precision_arguments(p, cuda=True)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The checks that need no model, before torch loads; returns the tokens.

    Raises:
        ValueError: one line naming the flag.
    """
    positive = {
        "--port": args.port, "--max-upload-mb": args.max_upload_mb,
        "--max-pixels": args.max_pixels, "--max-sessions": args.max_sessions,
        "--max-memory-mb": args.max_memory_mb, "--session-ttl": args.session_ttl,
        "--max-batch": args.max_batch, "--threads": args.threads or 1,
        "--empty-session-ttl": args.empty_session_ttl,
        "--max-client-sessions": args.max_client_sessions,
        "--max-client-memory-mb": args.max_client_memory_mb,
        "--max-adapter-sessions": args.max_adapter_sessions,
        "--fetch-timeout": args.fetch_timeout, "--fetch-workers": args.fetch_workers,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    if args.limit_longest_size < 0:
        raise ValueError("--limit-longest-size must be >= 0 (0: no downscaling), got "
                         f"{args.limit_longest_size}")
    if args.cpu:  # otherwise the device, and so this check, waits for torch
        check_precision(args.precision, args.backend, "cpu")
    tokens = tuple(args.token or ())
    if any(not t for t in tokens):
        raise ValueError("--token must not be empty")
    if not tokens and not is_loopback(args.host) and not args.allow_no_token:
        raise ValueError(f"--host {args.host} is reachable from other machines: give "
                         "--token (or --allow-no-token to serve everyone who reaches it)")
    for origin in args.fetch_origin:
        try:
            normalize_origin(origin)
        except FetchError as e:
            raise ValueError(f"--fetch-origin {origin}: {e.message}") from None
    return tokens


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, loads the model and serves until interrupted; 2 on bad flags."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        tokens = _check_flags(args)
    except ValueError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    import torch  # the flags are fine: now the model code

    from isegm.annotation.errors import DeviceError
    from isegm.annotation.runtime import load_model, select_device
    from isegm.inference.utils import CheckpointError
    from isegm.serve.app import create_app
    from isegm.serve.service import Service

    try:
        device = select_device(args.cpu, args.gpu)
        if args.threads:
            torch.set_num_threads(args.threads)
        model = load_model(args.checkpoint, device, args.precision, args.backend)
        refine = resolve_refine(args.refine, args.checkpoint)
    except (ValueError, CheckpointError, DeviceError, InputError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    config = ServeConfig(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_sessions=args.max_sessions,
        max_memory_bytes=int(args.max_memory_mb * 2**20),
        session_ttl_s=args.session_ttl,
        empty_session_ttl_s=args.empty_session_ttl,
        max_client_sessions=args.max_client_sessions,
        max_client_memory_bytes=int(args.max_client_memory_mb * 2**20),
        max_adapter_sessions=args.max_adapter_sessions,
        tokens=tokens,
        host=args.host,
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allow_origin),
        fetch_origins=tuple(args.fetch_origin),
        fetch_deadline_s=args.fetch_timeout,
        fetch_workers=args.fetch_workers,
        limit_longest_size=args.limit_longest_size,
        zoom_in=args.zoom_in,
        refine=refine,
        max_batch=args.max_batch,
        model_name=str(args.checkpoint or DEFAULT_CHECKPOINT.name),
    )
    app = create_app(Service(model, device, config, num_threads=args.threads))
    if not is_loopback(args.host):
        logger.warning("listening on %s: anyone who can reach it can use the server%s",
                       args.host, " with a token" if tokens else " (no --token set)")
    import uvicorn

    logger.info("serving on http://%s:%d/ (API docs at /docs)", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
