"""uvicorn serving an inherited TCP listening socket as it serves one it binds itself.

``python -m bench.baselines.uvicorn_fd FD`` runs :mod:`bench.baselines.seed` on descriptor
``FD`` (uvloop, httptools, no access log, keep-alive 30 s), as ``bench._servers.seed`` does.

Why not ``uvicorn --fd FD``: uvicorn wraps that descriptor as ``AF_UNIX``
(``socket.fromfd(fd, AF_UNIX, ...)``), so uvloop treats the accepted TCP connections as
pipes and never sets ``TCP_NODELAY`` on them. The app sends a response's head and body in
two writes; without ``TCP_NODELAY`` the kernel holds the body until the client acknowledges
the head, and the client delays that acknowledgement up to 40 ms. Every response on a
keep-alive connection then took about 44 ms (measured with ``http.client``: 44 ms for
``GET /cache`` and ``GET /healthz`` alike), which capped 20 Locust users at about 430 req/s
with the process mostly idle. ``uvicorn --host H --port P``, the seed design's deployment,
binds a TCP socket and sets ``TCP_NODELAY``; :class:`socket.socket` built on the descriptor
reads its real family, so the same happens here.
"""

from __future__ import annotations

import argparse
import socket

import uvicorn

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.uvicorn_fd")
    parser.add_argument("fd", type=int, help="an inherited listening TCP socket")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(
        "bench.baselines.seed:app",
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
