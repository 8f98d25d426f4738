"""The lab's server through Starlette's TestClient: the Host check, one-line 400s for bad input, every control
action, the event stream, saving into the runs folder only; the language catalogues against the page; the
`gankit lab` command's host rules."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the lab needs the [serve] extra (starlette, uvicorn)")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2 (pip install httpx2)")

from starlette.testclient import TestClient  # noqa: E402

from gankit.errors import GankitError  # noqa: E402
from gankit import i18n  # noqa: E402
from gankit.lab.app import create_app  # noqa: E402

PAGE = Path(i18n.__file__).parents[1] / "lab" / "page.html"


QUICK = "data=mog1d&z_dim=1&g_width=16&d_width=16&batch=32&speed=3"  # the real engine at its smallest


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "runs")
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def post(c, path, body):
    return c.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def events(c, query="", frames=1):
    """The first ``frames`` frames of /api/stream."""
    with c.stream("GET", "/api/stream", params={"state": query, "frames": frames}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    return [json.loads(line[len("data: "):]) for line in body.split("\n") if line.startswith("data: ")]


def one_line_400(r, match: str) -> None:
    assert r.status_code == 400, r.text
    msg = r.json()["error"]
    assert "\n" not in msg and re.search(match, msg), msg


# -- the server ----------------------------------------------------------------------------------------------
def test_page_is_served_with_every_catalogue_and_a_strict_csp(client):
    r = client.get("/")
    assert r.status_code == 200
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "/*I18N*/" not in r.text and '"lab.play": "播放"' in r.text and '"lab.play": "Play"' in r.text
    assert re.search(r"https?://", r.text) is None  # offline-first: no CDN, nothing fetched from elsewhere
    assert '"lang": "zh"' in client.get("/?lang=zh").text


def test_host_check_blocks_other_names(client):
    r = client.get("/", headers={"host": "evil.example:8000"})
    assert r.status_code == 400
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200


def test_stream_and_control_actions(client):
    from gankit.lab.engine import LabState

    (first,) = events(client, QUICK + "&seed=3")
    state = LabState.from_query(QUICK + "&seed=3")
    assert first["state"] == state.to_query() and first["playing"] is False
    assert (first["step"], first["d_updates"], first["g_updates"]) == (0, 0, 0)
    lab = client.app.state.lab
    # (training steps, D updates, G updates) after each action: single updates are not training steps
    for action, want in [("step", (1, 1, 1)), ("step_g", (1, 1, 2)), ("step_d", (1, 2, 2)), ("step", (2, 3, 3)),
                         ("reset", (0, 0, 0))]:
        r = post(client, "/api/control", {"action": action, "state": first["state"]})
        assert r.status_code == 200 and r.json()["playing"] is False, (action, r.text)
        frame = json.loads(lab.latest)
        assert (r.json()["step"], frame["d_updates"], frame["g_updates"]) == want, action
    r = post(client, "/api/control", {"action": "play", "state": first["state"]})
    assert r.json()["playing"] is True
    frames = events(client, first["state"], frames=3)
    steps = [f["step"] for f in frames]
    assert steps == sorted(steps) and steps[-1] >= 3 and all(s % 3 == 0 for s in steps)  # speed 3: 3 steps a frame
    r = post(client, "/api/control", {"action": "pause"})
    assert r.json()["playing"] is False
    time.sleep(0.05)
    # a changed state resets the lab with it
    r = post(client, "/api/control", {"action": "step", "state": QUICK + "&seed=4"})
    assert r.json()["step"] == 1 and lab.state == LabState.from_query(QUICK + "&seed=4")
    assert r.json()["state"] == lab.state.to_query()


def test_the_same_state_gives_the_same_frames(client):
    from gankit.lab.engine import LabState

    q = LabState.from_query(QUICK + "&seed=5").to_query()
    runs = []
    for _ in range(2):
        post(client, "/api/control", {"action": "reset", "state": q})
        post(client, "/api/control", {"action": "step", "state": q})
        runs.append(json.loads(client.app.state.lab.latest))
    assert runs[0]["fake"] == runs[1]["fake"] and runs[0]["heat"] == runs[1]["heat"]


def test_state_is_parsed_and_written_back(client):
    r = client.get("/api/state", params={"state": "seed=2&points=1,2;3,4&data=drawn"})
    assert r.status_code == 200
    assert r.json()["fields"]["points"] == [[1.0, 2.0], [3.0, 4.0]]
    assert r.json()["query"] == "data=drawn&points=1.0,2.0;3.0,4.0&loss=nonsaturating&g_lr=0.001&d_lr=0.001&" \
        "d_steps=1&pack=1&g_width=128&d_width=128&z_dim=2&batch=128&seed=2&speed=10"
    assert client.get("/api/state", params={"state": "?seed=2"}).json()["fields"]["seed"] == 2


@pytest.mark.parametrize("method,path,body,match", [
    ("post", "/api/control", {"action": "fly"}, r"'action' must be one of play, pause"),
    ("post", "/api/control", {}, r"missing 'action'"),
    ("post", "/api/control", [1, 2], r"JSON object"),
    ("post", "/api/control", {"action": "play", "state": "data=moon"}, r"lab: data must be one of ring8"),
    ("post", "/api/control", {"action": "play", "state": "speed=0"}, r"lab: speed must be an integer in \[1, 200\]"),
    ("post", "/api/control", {"action": "play", "state": "data=drawn"}, r"data=drawn needs points"),
    ("post", "/api/control", {"action": "play", "state": 7}, r"'state' must be a query string"),
    ("post", "/api/save", {"name": "/etc/x"}, r"plain folder name"),
    ("post", "/api/save", {"name": "../up"}, r"plain folder name"),
    ("get", "/api/state?state=bogus=1", None, r"lab: unknown key 'bogus'"),
    ("get", "/api/stream?frames=x", None, r"'frames' must be a whole number"),
])
def test_bad_input_is_a_one_line_400(client, method, path, body, match):
    r = post(client, path, body) if method == "post" else client.get(path)
    one_line_400(r, match)


def test_bad_json_and_oversized_bodies(client):
    json_type = {"content-type": "application/json"}
    one_line_400(client.post("/api/control", content=b"{not json", headers=json_type), "JSON object")
    one_line_400(client.post("/api/control", content=b"x" * 300_000, headers=json_type), "larger than")
    assert client.get("/api/control").status_code == 405
    assert "no such page" in client.get("/nope").json()["error"]


def test_save_writes_an_ordinary_run_into_the_runs_folder_only(client, tmp_path):
    import gankit

    post(client, "/api/control", {"action": "step", "state": QUICK})
    r = post(client, "/api/save", {})
    assert r.status_code == 200
    path = Path(r.json()["path"])
    assert path.parent == tmp_path / "runs" and path.name.startswith("lab-")
    assert gankit.load(path).step == 1  # an ordinary run folder: gankit.load, eval, serve read it
    second = Path(post(client, "/api/save", {}).json()["path"])
    assert second != path and second.parent == tmp_path / "runs"  # same second: a new folder, not an overwrite
    named = Path(post(client, "/api/save", {"name": "my-run"}).json()["path"])
    assert named == tmp_path / "runs" / "my-run"
    one_line_400(post(client, "/api/save", {"name": "my-run"}), "already exists")
    assert sorted(p.parent for p in (tmp_path / "runs").iterdir()) == [tmp_path / "runs"] * 3


def test_other_sites_cannot_post(client, tmp_path):
    """A page elsewhere can POST text/plain to 127.0.0.1 without a preflight: refused, and nothing is saved."""
    body = json.dumps({"action": "play"})
    r = client.post("/api/control", content=body, headers={"content-type": "text/plain"})
    one_line_400(r, "Content-Type: application/json")
    r = client.post("/api/save", content="{}", headers={"content-type": "application/json",
                                                       "origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin request from 'http://evil.example' refused" in r.json()["error"]
    assert not (tmp_path / "runs").exists()
    r = client.post("/api/control", content=json.dumps({"action": "pause", "state": QUICK}),
                    headers={"content-type": "application/json", "origin": "http://127.0.0.1:8000"})
    assert r.status_code == 200  # the lab's own page


# -- the language catalogues ----------------------------------------------------------------------------------
# Every page or report that takes its words from the catalogues: its source file and the key prefixes it may use.
SRC = Path(i18n.__file__).parents[1]
I18N_USERS = {SRC / "lab" / "page.html": ("lab", "common"),
              SRC / "serve" / "page.html": ("studio", "common"),
              SRC / "serve" / "app.py": ("studio",), SRC / "serve" / "params.py": ("studio",),
              SRC / "serve" / "evals.py": ("studio",),
              SRC / "theory" / "report.py": ("theory",), SRC / "theory" / "plots.py": ("theory",)}


def _keys(path: Path, prefixes: tuple[str, ...]) -> set[str]:
    # every key is spelled out whole (no keys pieced together), so a quoted "lab.*", "studio.*", ... is a use
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"""["']((?:%s)\.[\w.]+)["']""" % "|".join(prefixes), text))


def test_every_key_is_in_both_catalogues_and_used_by_a_page():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    used = set()
    for path, prefixes in I18N_USERS.items():
        keys = _keys(path, prefixes)
        assert keys - set(en) == set(), f"keys {path.name} of {path.parent.name}/ uses but en.json lacks"
        assert keys - set(zh) == set(), f"keys {path.name} of {path.parent.name}/ uses but zh.json lacks"
        used |= keys
    assert {k.split(".")[0] for k in used} == {"lab", "studio", "theory", "common"}
    assert set(en) - used == set(), "keys no page uses"
    assert set(zh) - used == set(), "keys no page uses (zh.json)"
    for k in en:
        assert i18n.placeholders(en[k]) == i18n.placeholders(zh[k]), k
        assert zh[k].strip(), k
    # the Chinese catalogue speaks the tutorial's words, in the lab, the studio and the theory report alike
    for prefix, words in (("lab.", ("判别器", "生成器", "最优判别器", "JS 散度")),
                          ("studio.", ("生成器", "插值", "样本网格")),
                          ("theory.", ("判别器", "生成器", "最优判别器", "JS 散度", "模式崩溃"))):
        text = "".join(i18n.catalogue("zh", prefix).values())
        for word in words:
            assert word in text, (prefix, word)


def test_page_script_is_safe_inside_a_script_element():
    script = i18n.page_script("lab.", "zh")
    assert script.startswith("const I18N = {") and "function translate(" in script and "function t(" in script
    assert "<" not in script.split(";\n", 1)[0]  # no "</script>" can end the element early
    assert '"lang": "zh"' in script and '"common.error"' in script and '"lab.play"' in script


def test_unknown_language_is_a_one_line_error():
    with pytest.raises(GankitError, match=r"no catalogue for language 'fr'; choose one of en, zh"):
        i18n.catalogue("fr")
    assert i18n.catalogue("zh", "lab.data.") == {k: v for k, v in i18n.catalogue("zh").items()
                                                 if k.startswith("lab.data.")}


# -- the command ----------------------------------------------------------------------------------------------
def test_lab_command_is_registered_and_refuses_bad_options(capsys):
    from gankit.cli import main

    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    out = capsys.readouterr().out
    assert "--lang {en,zh}" in out and "--runs DIR" in out and "127.0.0.1" in out
    from gankit.cli import _parser
    from gankit.lab.cli_lab import EXAMPLES

    examples = [ln.split("#")[0].split()[1:] for ln in EXAMPLES.splitlines() if ln.strip().startswith("gankit ")]
    assert len(examples) == 3
    for args in examples:  # each parses (running one would start a server)
        ns = _parser().parse_args(args)
        assert ns.command == "lab" and ns.host == "127.0.0.1"
    assert main(["lab", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert main(["lab", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


def test_lab_process_serves_loopback_warns_otherwise_and_stops_on_ctrl_c(tmp_path):
    """A real `gankit lab` process: the page and a frame on loopback; an open event stream does not keep Ctrl-C
    from stopping it; another address is served with a warning."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import urllib.request

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for host in ("127.0.0.1", "0.0.0.0"):
        proc = subprocess.Popen([sys.executable, "-m", "gankit", "lab", "--host", host, "--port", "0", "--runs",
                                 str(tmp_path / "runs"), "--lang", "zh", "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = proc.stdout.readline()
            assert line.startswith("open http://") and line.split()[1].endswith("/?lang=zh"), line
            port = line.split()[1].split(":")[2].split("/")[0]
            url = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(url + "/", timeout=60) as r:
                assert '"lang": "zh"' in r.read().decode()
            with urllib.request.urlopen(f"{url}/api/stream?frames=1&state={QUICK.replace('&', '%26')}",
                                        timeout=120) as r:
                assert json.loads(r.read().decode().split("data: ", 1)[1])["step"] == 0
            if host == "127.0.0.1":  # an open, never-ending stream while Ctrl-C arrives
                def listen():
                    try:
                        urllib.request.urlopen(url + "/api/stream", timeout=60).read()
                    except Exception:  # the server cuts it off on the way out: that is the point
                        pass
                threading.Thread(target=listen, daemon=True).start()
                time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
            err = proc.stderr.read()
            assert ("warning: listening on 0.0.0.0" in err) == (host == "0.0.0.0"), err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
