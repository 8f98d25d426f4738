"""The studio in two languages: ``gankit serve --lang zh`` serves a page that starts in Chinese, ``?lang=``
switches per request, and every label the page names by key has a text in the language it starts in."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2 (pip install httpx2)")
from starlette.testclient import TestClient  # noqa: E402

import gankit  # noqa: E402
from gankit import cli  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny untrained toy G saved the way the trainer saves one: the page needs a run, not a good one."""
    import torch

    from gankit.checkpoint import save_checkpoint
    from gankit.models import build_generator

    cfg = gankit.preset("seed").with_overrides({"model.arch": "toy", "model.z_dim": 2, "model.g_hidden": "16"})
    cfg = replace(cfg, train=replace(cfg.train, progress=False))
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("studio_i18n") / "toy.pt"
    G = build_generator(cfg.model, (2,))
    save_checkpoint(path, {"config": cfg.to_dict(), "img_shape": [2], "G": G.state_dict()})
    return path


def _start(page: str) -> tuple[str, dict[str, str]]:
    """The page's starting language and its catalogue, read from the embedded ``const I18N = {...};``."""
    blob = json.loads(re.search(r"const I18N = (\{.*?\});\n", page).group(1))
    return blob["lang"], blob["catalogues"][blob["lang"]]


def _labels(page: str, lang_cat: dict[str, str]) -> dict[str, str]:
    keys = re.findall(r'data-i18n(?:-title|-alt|-aria)?="([\w.]+)"', page)
    return {k: lang_cat[k] for k in keys}


def test_serve_lang_zh_serves_chinese_labels(checkpoint, monkeypatch, capsys):
    """The command itself, with the server swapped for a TestClient on the app it built."""
    import uvicorn

    pages = {}

    class FakeServer:
        def __init__(self, config):
            self.app = config.app

        def run(self, sockets):
            for s in sockets:
                s.close()
            with TestClient(self.app, base_url="http://127.0.0.1") as c:
                for url in ("/", "/?lang=en", "/?lang=fr"):
                    r = c.get(url)
                    pages[url] = (r.status_code, r.text)

    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    assert cli.main(["serve", str(checkpoint), "--port", "0", "--lang", "zh"]) == 0
    status, page = pages["/"]
    assert status == 200
    lang, cat = _start(page)
    labels = _labels(page, cat)
    assert lang == "zh" and len(labels) > 30
    for key, word in (("studio.samples", "样本网格"), ("studio.interp", "潜空间插值"), ("studio.generate", "生成"),
                      ("studio.grid.alt", "生成器"), ("studio.card", "模型卡片")):
        assert word in labels[key], key
    assert all(re.search(r"[\u4e00-\u9fff]", v) or v.isascii() and v.strip() for v in labels.values())
    # the URL chooses another language; an unknown one is a one-line error, not an English page
    lang, cat = _start(pages["/?lang=en"][1])
    assert lang == "en" and _labels(pages["/?lang=en"][1], cat)["studio.samples"] == "Samples"
    status, body = pages["/?lang=fr"]
    assert status == 400 and "choose lang= one of en, zh" in json.loads(body)["error"]


def test_studio_defaults_to_english_and_refuses_an_unknown_language(checkpoint, capsys):
    from gankit.errors import GankitError
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover

    with TestClient(create_app(discover(checkpoint)), base_url="http://127.0.0.1") as c:
        r = c.get("/")
        assert r.status_code == 200 and _start(r.text)[0] == "en"
        assert _start(c.get("/?lang=zh").text)[0] == "zh"
        assert c.get("/?lang=zh&x=1").status_code == 400  # other parameters are still checked
    with pytest.raises(GankitError, match=r"no catalogue for language 'fr'; choose one of en, zh"):
        create_app(discover(checkpoint), lang="fr")
    assert cli.main(["serve", str(checkpoint), "--lang", "fr"]) == 2
    assert "argument --lang: invalid choice: 'fr'" in capsys.readouterr().err


def test_language_switch_in_a_real_browser(server, browser):
    """The page starts in ?lang=zh, every label in Chinese; the switch turns it to English and keeps the choice
    in the URL, the status line and the model card included."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/?lang=zh")
    page.wait_for_function("() => document.getElementById('grid').dataset.loaded")
    page.wait_for_function("() => document.querySelector('#card tbody').rows.length > 3")
    assert page.inner_text("section h2") == "样本网格"
    assert page.eval_on_selector("html", "e => e.lang") == "zh-CN" and page.input_value("#lang") == "zh"
    assert "个样本" in page.inner_text("#status") and "（第 40 步）" in page.inner_text("#run")
    assert "已训练步数" in page.inner_text("#card") and page.get_attribute("#grid", "alt") == "生成器的样本网格"
    page.select_option("#lang", "en")
    page.wait_for_function("() => document.querySelector('#card').innerText.includes('steps trained')")
    assert page.inner_text("section h2") == "Samples" and "lang=en" in page.url
    assert " samples, seed 0" in page.inner_text("#status") and "(step 40)" in page.inner_text("#run")
    assert page.get_attribute("#roll", "title") == "draw a random seed"
    page.close()
    assert not errors, errors
