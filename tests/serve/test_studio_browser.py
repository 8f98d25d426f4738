"""End to end in a real headless browser (Debian's chromium driven by Playwright): the page generates,
changes seed, picks a class, interpolates, downloads; the run report opens with every image loaded."""
from __future__ import annotations

import io
import shutil
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from gankit.serve import render



@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.close()
    assert not errors, errors  # no uncaught script errors


def wait_grid(page, **want):
    """Wait until #grid shows the grid.png with these query parameters; its (PNG bytes, displayed URL)."""
    page.wait_for_function(
        "(want) => { const u = document.getElementById('grid').dataset.loaded; if (!u) return false;"
        " const q = new URL(u, location.href).searchParams;"
        " return Object.entries(want).every(([k, v]) => q.get(k) === v); }", arg={k: str(v) for k, v in want.items()})
    url = page.eval_on_selector("#grid", "img => img.dataset.loaded")
    return url


def fetch_png(server, url: str) -> np.ndarray:
    status, headers, body = server.get(url)
    assert status == 200
    im = Image.open(io.BytesIO(body))
    assert im.format == "PNG"
    return np.asarray(im)


def test_generate_change_seed_roll_and_download(server, page):
    page.goto(server.url + "/")
    wait_grid(page, seed=0, run="a")  # the page draws seed 0 on load
    page.fill("#seed", "5")
    with page.expect_response(lambda r: "/api/grid.png" in r.url and "seed=5" in r.url) as resp:
        page.click("#generate")
    body = resp.value.body()
    url = wait_grid(page, seed=5)
    im = Image.open(io.BytesIO(body))
    assert im.format == "PNG" and im.size == render.grid_shape(64, (1, 8, 8), None, 1) == (82, 82)
    assert page.eval_on_selector("#grid", "i => [i.naturalWidth, i.naturalHeight]") == [82, 82]
    assert page.eval_on_selector("#grid", "i => i.complete && i.naturalWidth > 0")
    first = fetch_png(server, url)

    page.fill("#seed", "6")
    page.press("#seed", "Enter")
    url6 = wait_grid(page, seed=6)
    assert not np.array_equal(first, fetch_png(server, url6))  # another seed, another picture

    page.click("#roll")
    page.wait_for_function("() => document.getElementById('seed').value !== '6'")
    rolled = page.input_value("#seed")
    wait_grid(page, seed=rolled)

    page.select_option("#n", "16")
    wait_grid(page, seed=rolled, n=16)
    href = page.get_attribute("#download", "href")
    assert "zoom=4" in href and "n=16" in href
    big = fetch_png(server, href)
    assert big.shape == (4 * 42, 4 * 42)  # 16 digits of 8x8 in a 4x4 grid, 2 px gaps, zoomed 4x
    assert "seed" + rolled in page.get_attribute("#download", "download")


def test_class_picker_and_card(server, page):
    page.goto(server.url + "/")
    wait_grid(page, run="a")
    assert not page.is_visible("#label")  # unconditional run: no class picker
    # the card loads after the grid, in its own request: wait for it rather than read it at once
    page.wait_for_function("() => document.getElementById('card').innerText.includes('not evaluated')")
    page.select_option("#run", "cond")
    wait_grid(page, run="cond")
    assert page.is_visible("#label")
    options = page.eval_on_selector_all("#label option", "os => os.map(o => o.value)")
    assert options == [""] + [str(i) for i in range(10)]  # "random", then the 10 classes
    page.select_option("#label", "3")
    url = wait_grid(page, run="cond", label=3)
    q = dict(urllib.parse.parse_qsl(url.split("?", 1)[1]))
    assert q["label"] == "3"
    page.wait_for_function("() => document.getElementById('card').innerText.includes('10 classes')")


def test_interpolation_strip_and_animation(server, page):
    page.goto(server.url + "/")
    page.fill("#seed-a", "2")
    page.fill("#seed-b", "9")
    page.fill("#steps", "8")
    page.click("#interpolate")
    page.wait_for_function("() => { const s = document.getElementById('strip');"
                           " return s.dataset.loaded && s.dataset.loaded.includes('steps=8') && s.complete; }")
    assert page.eval_on_selector("#strip", "i => [i.naturalWidth, i.naturalHeight]") == [8 * 10 + 2, 12]
    page.wait_for_function("() => document.getElementById('anim').complete && "
                           "document.getElementById('anim').naturalWidth === 32")


def test_bad_input_shows_the_server_message(server, page):
    page.goto(server.url + "/")
    wait_grid(page, seed=0)
    page.fill("#seed", "-4")
    page.click("#generate")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "'seed' must be between 0 and 2147483647" in page.inner_text("#status")


def test_report_opens_with_every_image_loaded(runs_root, tmp_path, browser):
    from gankit.serve.report import write_report

    run = tmp_path / "a"
    shutil.copytree(runs_root / "a", run)
    path = write_report(run)
    pg = browser.new_page()
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(path.as_uri())
    pg.wait_for_load_state("load")
    sizes = pg.eval_on_selector_all("img", "is => is.map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(sizes) == 4 and all(c and w > 0 for c, w, _ in sizes), sizes
    assert pg.eval_on_selector_all("svg polyline", "ps => ps.length") == 4
    assert all(u.startswith(("file:", "data:")) for u in requests)  # nothing fetched from anywhere
    pg.close()


def test_evaluations_and_a_broken_run_on_the_page(evaluated_run, evaluated_rows, tmp_path, make_server, page):
    """Every evaluation of a real run (--eval-every and gankit eval --json) is on the page with its real
    values and floors, as a table and as charts; a run with a damaged checkpoint is listed, marked, and the
    page opens on the healthy one."""
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover

    root = tmp_path / "runs"
    shutil.copytree(evaluated_run, root / "ev")
    shutil.copytree(evaluated_run, root / "broken")
    (root / "broken" / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    s = make_server(create_app(discover(root)))
    page.goto(s.url + "/")
    wait_grid(page, run="ev")  # the healthy run, though the broken one sorts first
    step = evaluated_rows[-1][0]
    assert page.eval_on_selector_all("#run option", "os => os.map(o => o.textContent)") == [
        "broken (broken)", f"ev (step {step})"]
    assert "1 run(s) cannot be loaded: broken: " in page.inner_text("#broken")

    page.wait_for_function("(n) => document.querySelectorAll('#evals tbody tr').length === n",
                           arg=len(evaluated_rows))
    shown = page.eval_on_selector_all("#evals tbody tr", "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
    assert shown == evaluated_rows  # the numbers in metrics.jsonl and eval.json, to 4 digits, with their floors
    page.wait_for_function("() => { const is = [...document.querySelectorAll('#charts img')];"
                           " return is.length === 6 && is.every(i => i.complete && i.naturalWidth > 0); }")
    assert page.eval_on_selector_all("#charts img", "is => is.map(i => i.alt)") == [
        "fd300", "pr300_k3 precision", "pr300_k3 recall", "fd400", "pr400_k3 precision", "pr400_k3 recall"]
    card = page.inner_text("#card")
    last = [r for r in evaluated_rows if r[0] == step]
    assert f"step {step}" in card and "{" not in card
    for r in last:  # the card's summary: the last evaluation, each score with its floor
        assert f"{r[1]}\t{r[2]} (floor {r[3]})" in card

    page.select_option("#run", "broken")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "run broken cannot be loaded" in page.inner_text("#status")
    assert page.eval_on_selector("#grid", "i => i.getAttribute('src')") is None  # not ev's grid under its name
    page.wait_for_function("() => document.getElementById('card').innerText.includes('error')")
