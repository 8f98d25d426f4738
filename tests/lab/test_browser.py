"""The lab end to end in a real headless browser (Debian's chromium driven by Playwright, as the studio's browser
tests drive it) against a real uvicorn server configured as `gankit lab` configures it: frames arrive while
playing, one step is one step, the URL reproduces the run, the language switch relabels the page."""
from __future__ import annotations

import socket
import threading
import time
import urllib.parse

import pytest

pytest.importorskip("starlette", reason="the lab needs the [serve] extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="the lab needs the [serve] extra (starlette, uvicorn)")

# small networks on the 1-D mixture: frames in a fraction of a second on 2 busy cores
QUICK = "data=mog1d&z_dim=1&g_width=16&d_width=16&batch=32&speed=2"


class LabServer:
    """uvicorn serving the lab in a thread on a port the OS picked, with `gankit lab`'s settings."""

    def __init__(self, app):
        import uvicorn

        from gankit.serve.server import server_config

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(server_config(app, log_level="error", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the lab server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from gankit.lab.app import create_app

    s = LabServer(create_app(tmp_path_factory.mktemp("lab") / "runs"))
    yield s
    s.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 950})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    yield pg
    pg.close()
    assert not errors, errors  # no uncaught script errors
    assert all(u.startswith(("http://127.0.0.1:", "data:")) for u in requests), requests  # offline-first


def frames(page) -> int:
    return page.evaluate("() => window.lab.frames")


def step(page) -> int:
    return int(page.get_attribute("#step", "data-step"))


def url_state(page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def open_lab(page, server, query: str) -> None:
    page.goto(f"{server.url}/?{query}")
    page.wait_for_function("() => window.lab && window.lab.frames > 0", timeout=60_000)


def test_play_streams_frames_and_step_is_one_step(server, page):
    open_lab(page, server, QUICK + "&seed=1")
    page.click("#step-btn")
    page.wait_for_function("() => window.lab.frame.step === 1", timeout=30_000)
    with page.expect_response(lambda r: r.url.endswith("/api/control") and '"reset"' in (r.request.post_data or "")):
        page.click("#reset")
    page.wait_for_function("() => window.lab.frame.step === 0 && !window.lab.playing")
    n = frames(page)
    page.click("#play")
    page.wait_for_function("(n) => window.lab.frames >= n + 4 && window.lab.frame.step >= 6", arg=n, timeout=60_000)
    assert step(page) % 2 == 0  # speed 2: two steps a frame
    page.click("#pause")
    page.wait_for_function("() => !window.lab.playing")
    time.sleep(0.3)
    s = step(page)
    page.click("#step-btn")
    page.wait_for_function("(s) => window.lab.frame.step === s + 1", arg=s, timeout=30_000)
    before = page.evaluate("() => [window.lab.frame.d_updates, window.lab.frame.g_updates]")
    page.click("#step-d")
    page.wait_for_function("(d) => window.lab.frame.d_updates === d + 1", arg=before[0], timeout=30_000)
    time.sleep(0.3)
    assert step(page) == s + 1  # exactly one step, and a D update is not a step
    assert page.evaluate("() => window.lab.frame.g_updates") == before[1]


def test_the_url_reproduces_the_run(server, page, browser):
    open_lab(page, server, QUICK + "&seed=1")
    page.fill("#seed", "7")
    page.dispatch_event("#seed", "change")
    page.wait_for_function("() => new URL(location.href).searchParams.get('seed') === '7'")
    page.select_option("#loss", "minimax")
    page.wait_for_function("() => new URL(location.href).searchParams.get('loss') === 'minimax'")
    page.wait_for_function("() => window.lab.frame.state.includes('seed=7') && "
                           "window.lab.frame.state.includes('loss=minimax')", timeout=30_000)
    first = page.evaluate("() => window.lab.frame")
    assert first["step"] == 0
    link = page.url
    assert url_state(page)["lang"] == "en" and url_state(page)["d_width"] == "16"
    # another state in between, then the link: the same controls and the same first frame
    page.fill("#seed", "8")
    page.dispatch_event("#seed", "change")
    page.wait_for_function("() => window.lab.frame.state.includes('seed=8')", timeout=30_000)
    other = browser.new_page()
    other.goto(link)
    other.wait_for_function("() => window.lab && window.lab.frames > 0 && window.lab.frame.state.includes('seed=7')",
                            timeout=60_000)
    assert other.input_value("#seed") == "7" and other.input_value("#loss") == "minimax"
    assert other.input_value("#d_width") == "16" and other.input_value("#data") == "mog1d"
    again = other.evaluate("() => window.lab.frame")
    assert again["step"] == 0
    for key in ("fake", "heat", "dstar", "manifold"):
        assert again[key] == first[key], key
    assert other.url == link
    other.close()


def test_language_switch_relabels_the_page(server, page):
    open_lab(page, server, QUICK + "&lang=zh")
    assert page.inner_text("#play") == "播放" and page.inner_text("#step-btn") == "单步"
    assert "判别器" in page.inner_text("body") and page.evaluate("document.documentElement.lang") == "zh-CN"
    page.select_option("#lang", "en")
    assert page.inner_text("#play") == "Play" and page.get_attribute("#step-d", "title").startswith("one update")
    assert url_state(page)["lang"] == "en"
    page.select_option("#lang", "zh")
    assert url_state(page)["lang"] == "zh"
    page.reload()
    page.wait_for_function("() => window.lab && window.lab.frames > 0", timeout=60_000)
    assert page.inner_text("#play") == "播放" and page.title() == "gankit · GAN 实验室"


def test_the_plane_panels_draw_and_clicks_add_points(server, page):
    open_lab(page, server, "g_width=16&d_width=16&batch=32&speed=1")
    page.wait_for_function("() => window.lab.frame.dim === 2", timeout=60_000)
    ink = page.evaluate("""() => ['c-samples', 'c-disc', 'c-manifold', 'c-value'].map((id) => {
        const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let k = 3; k < d.length; k += 4) n += d[k] > 0; return n; })""")
    assert all(n > 100 for n in ink), ink  # every panel has something on it
    page.select_option("#data", "drawn")
    assert page.is_visible("#draw-box")
    box = page.locator("#c-samples").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)  # x > 0, y > 0
    page.wait_for_function("() => new URL(location.href).searchParams.get('data') === 'drawn'", timeout=30_000)
    pts = url_state(page)["points"].split(";")
    x, y = map(float, pts[0].split(","))
    assert len(pts) == 1 and 0.5 < x < 1.0 and 0.5 < y < 1.0  # ring8's plot spans -1.5 .. 1.5
    page.wait_for_function("() => window.lab.frame.state.includes('data=drawn')", timeout=60_000)


def test_a_bad_link_says_why_and_opens_the_defaults(server, page):
    open_lab(page, server, QUICK + "&pack=99")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "lab: pack must be an integer in [1, 8], got 99" in page.inner_text("#status")
    assert url_state(page)["pack"] == "1" and page.input_value("#pack") == "1"
