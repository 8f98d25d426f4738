"""Shared set-up of the studio tests: a folder with two real tiny runs and one conditional checkpoint, and a
real uvicorn server on a free loopback port serving it (one per test module)."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import gankit

TINY = {"data.name": "digits", "train.steps": 40, "train.progress": False, "train.log_every": 10}


def _train(out: Path, **extra) -> None:
    with pytest.MonkeyPatch.context() as mp:  # the same isolated data environment as every test
        mp.setenv("GANKIT_SYSTEM_DATA_DIRS", "")
        mp.setenv("GANKIT_CACHE", str(out.parent / ".cache"))
        gankit.train(gankit.preset("seed").with_overrides({**TINY, **extra}), out=out, log=lambda *_: None)


def _conditional_checkpoint(path: Path, num_classes: int = 10) -> None:
    """A class-conditional G saved the way the trainer saves one (gankit's own checkpoint writer)."""
    from gankit.models import build_generator
    from gankit.train.checkpoint import save_checkpoint

    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "model.cond": "concat",
                                               "model.num_classes": num_classes, "model.z_dim": 16})
    cfg = replace(cfg, train=replace(cfg.train, progress=False))
    torch.manual_seed(0)
    G = build_generator(cfg.model, (1, 8, 8))
    save_checkpoint(path, {"config": cfg.to_dict(), "img_shape": [1, 8, 8], "G": G.state_dict(), "step": 7})


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """runs/a (40 steps, batch 100: 2 epoch grids), runs/grp/b (20 steps, batch 50), runs/cond (a 10-class
    conditional G, never trained)."""
    root = tmp_path_factory.mktemp("studio") / "runs"
    _train(root / "a")
    _train(root / "grp" / "b", **{"train.steps": 20, "train.batch_size": 50})
    cond = root / "cond"
    (cond / "checkpoints").mkdir(parents=True)
    (cond / "config.json").write_text("{}")
    _conditional_checkpoint(cond / "checkpoints" / "last.pt")
    return root


class Server:
    """uvicorn serving the studio app in a thread, on a port the OS picked."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict | None = None, method: str = "GET"):
        """(status, headers, body bytes) of one request; 4xx/5xx are returned, not raised."""
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path: str):
        status, _, body = self.get(path)
        return status, json.loads(body)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture
def make_server():
    """``make_server(app)``: a :class:`Server` for an app of the test's own, closed after the test."""
    made = []

    def make(app):
        made.append(Server(app))
        return made[-1]
    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def server(runs_root):
    pytest.importorskip("starlette", reason="the studio needs the [serve] extra (starlette, uvicorn)")
    pytest.importorskip("uvicorn", reason="the studio needs the [serve] extra (starlette, uvicorn)")
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover

    s = Server(create_app(discover(runs_root)))
    yield s
    s.close()
