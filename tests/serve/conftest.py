"""Shared set-up of the studio tests: a folder with two real tiny runs and one conditional checkpoint, a real
run evaluated both ways (during training and by `gankit eval --json`), and a real uvicorn server (configured as
`gankit serve` configures it) on a free loopback port serving the folder (one per test module)."""
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
    from gankit.checkpoint import save_checkpoint

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


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory) -> Path:
    """A digits run of 2 epochs evaluated both ways, as the README says: `gankit train --eval-every 1
    --eval-metrics fd300,pr300_k3` (two rows in metrics.jsonl) and `gankit eval RUN --metrics fd400,pr400_k3
    --json RUN/eval.json` (the last step). Scored with the pinned digits evaluator (none is trained): ~10 s."""
    from gankit.cli import main

    run = tmp_path_factory.mktemp("evaluated") / "runs" / "ev"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_SYSTEM_DATA_DIRS", "")
        mp.setenv("GANKIT_CACHE", str(run.parent.parent / ".cache"))
        assert main(["train", "--dataset", "digits", "--epochs", "2", "--no-progress", "--out", str(run),
                     "--eval-every", "1", "--eval-metrics", "fd300,pr300_k3"]) == 0
        assert main(["eval", str(run), "--metrics", "fd400,pr400_k3", "--json", str(run / "eval.json")]) == 0
    return run


@pytest.fixture(scope="session")
def evaluated_rows(evaluated_run) -> list[list[str]]:
    """The evaluation table the report and the studio must show for ``evaluated_run``, built from its files:
    [step, score, value, real-vs-real floor, N fake, file] per score, values to 4 significant digits."""
    lines = [json.loads(s) for s in (evaluated_run / "metrics.jsonl").read_text().splitlines()]
    report = json.loads((evaluated_run / "eval.json").read_text())
    assert [r["epoch"] for r in lines] == [1, 2] and lines[-1]["step"] == report["run"]["step"]
    evals = [(r["step"], r["metrics"], "metrics.jsonl") for r in lines]
    evals.append((report["run"]["step"], report["metrics"], "eval.json"))
    rows = []
    for step, metrics, source in evals:
        for name, scores in metrics.items():
            for score in ("fd", "precision", "recall"):
                if score in scores:
                    label = name if score == "fd" else f"{name} {score}"
                    rows.append([str(step), label, f"{scores[score]:.4g}", f"{scores['floor'][score]:.4g}",
                                 str(scores["n_fake"]), source])
    return rows


class Server:
    """uvicorn serving the studio app in a thread, on a port the OS picked, with `gankit serve`'s settings."""

    def __init__(self, app, header_timeout: float | None = None):
        import uvicorn

        from gankit.serve.server import HEADER_TIMEOUT_S, server_config

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.app = app
        self.server = uvicorn.Server(server_config(app, header_timeout or HEADER_TIMEOUT_S, log_level="error"))
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
    """``make_server(app, header_timeout=None)``: a :class:`Server` for an app of the test's own, closed after
    the test."""
    made = []

    def make(app, header_timeout=None):
        made.append(Server(app, header_timeout))
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
