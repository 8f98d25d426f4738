"""gankit serve from the command line: a real server process, its help, and one-line errors."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from gankit import GankitError, cli
from gankit.serve.runs import discover


def test_help_has_examples(capsys):
    for args in (["serve", "--help"], ["report", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(args)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "gankit serve runs/fm" in out and "gankit report runs/fm" in out and "127.0.0.1" in out
    from gankit.serve.cli_serve import EXAMPLES

    examples = [ln.split("#")[0].split()[1:] for ln in EXAMPLES.splitlines() if ln.strip().startswith("gankit ")]
    assert len(examples) == 3
    for args in examples:  # each parses (running one would start a server)
        ns = cli._parser().parse_args(args)
        assert ns.command == "serve" and ns.host == "127.0.0.1" and ns.threads == 1


def test_serve_without_the_extra_is_a_one_line_error(runs_root, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `pip install gankit` without [serve]
    assert cli.main(["serve", str(runs_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gankit: error: gankit serve needs the web extra: pip install 'gankit[serve]'"


def test_serve_argument_errors(runs_root, tmp_path, capsys):
    pytest.importorskip("uvicorn")
    assert cli.main(["serve", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path)]) == 2
    assert "no run folders (with checkpoints/last.pt)" in capsys.readouterr().err
    assert cli.main(["serve", str(runs_root), "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert cli.main(["serve", str(runs_root), "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        assert cli.main(["serve", str(runs_root), "--port", str(busy.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    finally:
        busy.close()


def test_discover_ids_and_sources(runs_root):
    assert list(discover(runs_root)) == ["a", "cond", "grp/b"]
    one = discover(runs_root / "grp" / "b")
    assert list(one) == ["b"] and one["b"].run_dir == runs_root / "grp" / "b"
    ckpt = discover(runs_root / "a" / "checkpoints" / "last.pt")
    assert list(ckpt) == ["a"] and ckpt["a"].checkpoint.name == "last.pt"
    with pytest.raises(GankitError, match="no run folders"):
        discover(runs_root / "a" / "samples")


def test_serve_process_answers_on_loopback_and_stops_on_ctrl_c(runs_root):
    pytest.importorskip("uvicorn")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(runs_root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("open http://127.0.0.1:"):
                url = line.split()[1]
        assert url is not None, proc.stderr.read()
        with urllib.request.urlopen(url + "api/runs", timeout=60) as r:
            assert [x["id"] for x in json.loads(r.read())] == ["a", "cond", "grp/b"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
