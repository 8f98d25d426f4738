"""The studio under things going wrong: a run whose checkpoint is deleted or damaged, links out of the served
folder, a loopback address spelled another way, and connections that never send a request."""
from __future__ import annotations

import json
import shutil
import socket

import pytest

from gankit import GankitError, cli
from gankit.serve.runs import discover

pytest.importorskip("uvicorn", reason="the studio needs the [serve] extra (starlette, uvicorn)")

from gankit.serve.app import create_app  # noqa: E402 - after the skip: needs starlette
from gankit.serve.server import HEADER_TIMEOUT_S, HeaderTimeoutH11, is_loopback  # noqa: E402


def test_a_broken_run_is_listed_with_its_error_and_the_others_still_served(runs_root, tmp_path, make_server):
    root = tmp_path / "runs"
    for name in ("corrupt", "gone", "good"):
        shutil.copytree(runs_root / "a", root / name)
    s = make_server(create_app(discover(root)))
    assert [r.get("error") for r in s.json("/api/runs")[1]] == [None] * 3  # all three loaded once
    (root / "gone" / "checkpoints" / "last.pt").unlink()
    (root / "corrupt" / "checkpoints" / "last.pt").write_bytes(b"\x00" * 64)
    status, runs = s.json("/api/runs")
    assert status == 200 and [r["id"] for r in runs] == ["corrupt", "gone", "good"]
    corrupt, gone, good = runs
    assert good == {"id": "good", "step": 40, "img_shape": [1, 8, 8], "conditional": False, "num_classes": 0}
    assert gone == {"id": "gone", "error": "run 'gone': its checkpoint is gone"}
    assert set(corrupt) == {"id", "error"} and "corrupt/checkpoints/last.pt" in corrupt["error"]
    # the broken runs answer with their reason; the healthy one still renders
    for run, reason in (("gone", "its checkpoint is gone"), ("corrupt", "last.pt")):
        status, _, body = s.get(f"/api/grid.png?run={run}&n=4")
        assert status == 503 and reason in json.loads(body)["error"]
        assert s.get(f"/api/card?run={run}")[0] == 503
    assert s.get("/api/grid.png?run=good&n=4")[0] == 200


def test_links_out_of_the_served_folder_are_not_followed(runs_root, tmp_path, make_server):
    outside, root = tmp_path / "outside", tmp_path / "served"
    shutil.copytree(runs_root / "a", outside / "secret")
    shutil.copytree(runs_root / "a", root / "mine")
    (root / "linked").symlink_to(outside / "secret", target_is_directory=True)  # a run folder linking out
    (root / "ckpt" / "checkpoints").mkdir(parents=True)  # a run folder of its own, its checkpoint linking out
    (root / "ckpt" / "config.json").write_text("{}")
    (root / "ckpt" / "checkpoints" / "last.pt").symlink_to(outside / "secret" / "checkpoints" / "last.pt")
    (root / "inner").symlink_to(root / "mine", target_is_directory=True)  # a link that stays inside is fine
    said: list[str] = []
    runs = discover(root, log=said.append)
    assert list(runs) == ["inner", "mine"]
    assert said == [f"skipping ckpt: its checkpoints/last.pt links outside {root}",
                    f"skipping linked: a link to a folder outside {root}"]
    s = make_server(create_app(runs))
    assert [r["id"] for r in s.json("/api/runs")[1]] == ["inner", "mine"]
    status, body = s.json("/api/card?run=linked")
    assert status == 404 and "runs served: inner, mine" in body["error"]
    # a link swapped in after start-up is refused as well
    ckpt = root / "mine" / "checkpoints" / "last.pt"
    ckpt.unlink()
    ckpt.symlink_to(outside / "secret" / "checkpoints" / "last.pt")
    status, _, body = s.get("/api/grid.png?run=mine&n=4")
    assert status == 503 and "links outside the served folder" in json.loads(body)["error"]
    assert {r["id"]: "error" in r for r in s.json("/api/runs")[1]} == {"inner": True, "mine": True}
    with pytest.raises(GankitError, match="checkpoints/last.pt links outside the run folder"):
        discover(root / "ckpt")
    (root / "mine").rename(tmp_path / "elsewhere")  # left: the two links out (and a dangling one)
    with pytest.raises(GankitError, match=r"no run folders .* \(2 linking outside it skipped\)"):
        discover(root)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("127.255.0.9", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.0.2.1", False), ("", False),
])
def test_loopback_is_decided_by_address(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_on_another_loopback_address_keeps_the_host_check(runs_root, monkeypatch, capsys, make_server):
    """`--host 127.0.0.2` is this machine: no "anyone can reach" warning, and a page on another site that
    resolves its name to 127.0.0.2 (DNS rebinding) is refused by its Host header."""
    import uvicorn

    seen: list = []

    def no_serving(self, sockets=None):  # what gankit serve would run, without running it
        seen.append((self.config, sockets[0].getsockname()))
        for sock in sockets:
            sock.close()
    with monkeypatch.context() as mp:
        mp.setattr(uvicorn.Server, "run", no_serving)
        assert cli.main(["serve", str(runs_root), "--host", "127.0.0.2", "--port", "0"]) == 0
        assert "anyone" not in capsys.readouterr().err
        # every interface is not loopback: a warning, and no Host check (no one name reaches the server)
        assert cli.main(["serve", str(runs_root), "--host", "0.0.0.0", "--port", "0"]) == 0
        assert "anyone who can reach this machine can use the studio" in capsys.readouterr().err
    (config, address), (every, _) = seen
    assert address[0] == "127.0.0.2"
    assert issubclass(config.http, HeaderTimeoutH11) and config.http.header_timeout == HEADER_TIMEOUT_S
    s = make_server(config.app)
    assert s.get("/api/runs", headers={"Host": "attacker.example"})[0] == 400
    assert s.get("/api/runs", headers={"Host": f"attacker.example:{s.port}"})[0] == 400
    for name in ("127.0.0.2", "127.0.0.1", "localhost"):
        assert s.get("/api/runs", headers={"Host": f"{name}:{s.port}"})[0] == 200
    assert make_server(every.app).get("/api/runs", headers={"Host": "studio.lan"})[0] == 200


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock``: waits (at most the socket's timeout) for its end of stream."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_connections_that_never_send_their_headers_are_closed(runs_root, make_server):
    s = make_server(create_app(discover(runs_root / "a")), header_timeout=1)
    idle = socket.create_connection(("127.0.0.1", s.port))
    stalled = socket.create_connection(("127.0.0.1", s.port))
    stalled.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a request, then nothing
    talker = socket.create_connection(("127.0.0.1", s.port))
    try:
        for sock in (idle, stalled, talker):
            sock.settimeout(30)  # generous: the server's deadline is 1 s
        talker.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert talker.recv(12) == b"HTTP/1.1 200"  # a whole request is answered as usual
        assert _closed_by_server(idle)
        assert _closed_by_server(stalled)
    finally:
        for sock in (idle, stalled, talker):
            sock.close()
