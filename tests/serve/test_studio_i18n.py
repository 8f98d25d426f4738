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


# -- the API's words: score labels, charts and error messages in the request's language -----------------------
ZH_WORDS = ("studio.score.precision", "studio.score.recall", "studio.col.floor", "studio.col.step")


@pytest.fixture(scope="module")
def evaluated(checkpoint, tmp_path_factory):
    """A run folder around the toy checkpoint, with two evaluations of FD (with its floor) and precision/recall."""
    import shutil

    run = tmp_path_factory.mktemp("studio_i18n_run") / "r"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint, run / "checkpoints" / "last.pt")
    rows = [{"step": s, "metrics": {"fd300": {"fd": 9.0 - s / 10, "n_fake": 300, "floor": {"fd": 0.5}},
                                    "pr300_k3": {"precision": 0.25 + s / 100, "recall": 0.125, "n_fake": 300}}}
            for s in (20, 40)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def _svg_text(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_score_labels_and_charts_speak_the_requested_language(evaluated):
    from gankit import i18n
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover

    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    with TestClient(create_app(discover(evaluated), lang="zh"), base_url="http://127.0.0.1") as c:
        card_zh, charts_zh = c.get("/api/card").json(), c.get("/api/charts").json()
        card_en, charts_en = c.get("/api/card?lang=en").json(), c.get("/api/charts?lang=en").json()
    labels = [r["label"] for r in card_zh["evaluations"]]
    assert labels == ["fd300", f"pr300_k3 {zh['studio.score.precision']}", f"pr300_k3 {zh['studio.score.recall']}"] * 2
    assert [r["label"] for r in card_en["evaluations"]] == ["fd300", "pr300_k3 precision", "pr300_k3 recall"] * 2
    assert [(r["metric"], r["score"]) for r in card_zh["evaluations"]] == [  # the names programs read stay put
        (r["metric"], r["score"]) for r in card_en["evaluations"]]
    assert [ch["label"] for ch in charts_zh] == labels[:3]
    words_zh = " ".join(t for ch in charts_zh for t in _svg_text(ch["svg"]))
    for key in ZH_WORDS:
        assert zh[key] in words_zh, key
        assert not re.search(r"\b%s\b" % re.escape(en[key]), words_zh), key  # no English word left
    assert f"{zh['studio.col.floor']} 0.5" in words_zh
    words_en = " ".join(t for ch in charts_en for t in _svg_text(ch["svg"]))
    assert "real-vs-real floor 0.5" in words_en and not re.search(r"[\u4e00-\u9fff]", words_en)


def test_api_errors_keep_code_and_english_and_add_the_requested_language(evaluated):
    from gankit import i18n
    from gankit.serve.app import create_app
    from gankit.serve.runs import discover

    with TestClient(create_app(discover(evaluated), lang="zh"), base_url="http://127.0.0.1") as zh_app, \
            TestClient(create_app(discover(evaluated)), base_url="http://127.0.0.1") as en_app:
        for client, url, want in ((zh_app, "/api/card?run=nope", "zh"), (en_app, "/api/card?run=nope&lang=zh", "zh"),
                                  (zh_app, "/api/card?run=nope&lang=en", "en"), (en_app, "/api/card?run=nope", "en")):
            r = client.get(url)
            body = r.json()
            assert r.status_code == 404 and body["code"] == "no_run", url
            assert body["error"] == "no run 'nope'; runs served: r", url  # English, whatever the language
            assert body["message"] == i18n.text(want, "studio.error.no_run", run="'nope'", shown="r"), url
        r = zh_app.get("/api/grid.png?n=0")
        body = r.json()
        assert r.status_code == 400 and body["code"] == "param_range"
        assert body["message"] == "参数 'n' 必须在 1 到 1024 之间，收到 0"
        assert body["error"] == "parameter 'n' must be between 1 and 1024, got 0"
        for url, code in (("/nowhere", "no_such_page"), ("/api/runs?x=1", "param_unknown"),
                          ("/api/grid.png?seed=a", "param_integer"), ("/api/charts?lang=fr", "param_choice")):
            body = zh_app.get(url).json()
            assert body["code"] == code and re.search(r"[\u4e00-\u9fff]", body["message"]), url
        # an image is the same bytes (and cache entry) in every language
        a, b = zh_app.get("/api/grid.png?n=4"), zh_app.get("/api/grid.png?n=4&lang=en")
        assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
