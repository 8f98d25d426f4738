"""``gankit theory --lang zh``: the same numbers and figures as the English report, the words in Chinese; the
English report is what it was before the report had a second language."""
from __future__ import annotations

import json
import re

import pytest

from gankit import cli, i18n
from gankit.theory import report


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Section 1 of the quick run, once in each language (same seed: the same numbers)."""
    root = tmp_path_factory.mktemp("theory_lang")
    for lang in ("en", "zh"):
        assert cli.main(["theory", "--quick", "--sections", "1", "--lang", lang, "--out", str(root / lang)]) == 0
    return root


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+\.\d+", text)


def test_lang_zh_writes_chinese_headings_and_the_same_numbers(reports):
    md = {lang: (reports / lang / "report.md").read_text(encoding="utf-8") for lang in ("en", "zh")}
    headings = re.findall(r"^#+ (.*)$", md["zh"], flags=re.MULTILINE)
    assert headings == ["gankit 理论报告：可以运行的推导", "1. 最优判别器"]
    assert "最优判别器" in md["zh"] and "生成器" in md["zh"] and "The optimal discriminator" not in md["zh"]
    assert "网格点数" in md["zh"] and "--lang zh" in md["zh"]
    assert not any(re.search(r"\{\w+\}", text) for text in md.values())  # every placeholder filled
    # everything after the run line (which holds the timings) has the same numbers in the same order
    body = {lang: md[lang].split("\n\n", 3)[3] for lang in md}
    timing = r"\(\d+\.\d s\)|（\d+\.\d 秒）"
    assert _numbers(re.sub(timing, "", body["zh"])) == _numbers(re.sub(timing, "", body["en"]))
    assert re.findall(r"\]\(([^)]+)\)", md["zh"]) == re.findall(r"\]\(([^)]+)\)", md["en"])
    html = (reports / "zh" / "index.html").read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in html and "<h2>1. 最优判别器</h2>" in html and "<title>gankit 理论报告</title>" in html
    en, zh = (json.loads((reports / lang / "results.json").read_text())["sections"] for lang in ("en", "zh"))
    for sec in (en, zh):  # the only number that differs between two runs: the wall time
        for numbers in sec.values():
            numbers.pop("seconds")
    assert en == zh


def test_english_words_are_the_catalogue_and_every_block_is_filled():
    """Placeholders are filled from named values; a missing value is an error, not a "{name}" in the report."""
    T = report.Text("zh")
    assert T("theory.s1.col.within", max=0.05, mean=0.01) == "最大误差 ≤ 0.05 且平均误差 ≤ 0.01"
    assert report.Text("en")("theory.figure", section=1, name="d_star") == "section 1: d_star"
    with pytest.raises(KeyError):
        T("theory.s1.col.within", max=0.05)
    assert set(report.Text("en").cat) == set(report.Text("zh").cat) == set(i18n.catalogue("en", "theory."))


# -- the figures: Chinese words in a CJK font, or English words and a note when there is none -----------------
def _capture_figures(monkeypatch) -> dict[str, list[tuple[str, str]]]:
    """{png name: [(text, font file it is drawn with), ...]} of every figure saved, read just before it is."""
    from matplotlib import font_manager
    from matplotlib.text import Text

    from gankit.theory import plots

    seen: dict[str, list[tuple[str, str]]] = {}
    save = plots._save

    def capture(fig, out, name):
        seen[name] = [(t.get_text(), font_manager.findfont(t.get_fontproperties(), fallback_to_default=False))
                      for t in fig.findobj(Text) if t.get_text().strip()]
        return save(fig, out, name)

    monkeypatch.setattr(plots, "_save", capture)
    return seen


def test_figures_under_zh_use_a_cjk_font_and_the_chinese_catalogue(monkeypatch, tmp_path, recwarn):
    from matplotlib import font_manager

    from gankit.theory import plots

    font = plots.find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    cjk_file = font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    seen = _capture_figures(monkeypatch)
    assert cli.main(["theory", "--quick", "--lang", "zh", "--out", str(tmp_path / "zh")]) == 0
    assert set(seen) == {"s1_optimal_d.png", "s2_value.png", "s3_dynamics_curves.png", "s3_dynamics_snapshots.png",
                         "s4_gradients.png", "s4_training.png", "s5_ring8.png"}
    texts = [t for items in seen.values() for t, _ in items]
    cjk = [(t, f) for items in seen.values() for t, f in items if re.search(r"[\u4e00-\u9fff]", t)]
    assert len(cjk) > 20 and all(f == cjk_file for _, f in cjk)  # every Chinese label in the CJK font
    en, zh = i18n.catalogue("en", "theory.fig."), i18n.catalogue("zh", "theory.fig.")
    plain = [k for k in en if not i18n.placeholders(en[k]) and k != "theory.fig.no_cjk_font"]
    for key in plain:
        assert zh[key] in texts, key
        assert all(en[key] not in t for t in texts if " " in en[key] or len(en[key]) > 4), key
    assert not [w for w in recwarn if "missing from font" in str(w.message)]  # no empty boxes


def test_figures_fall_back_to_english_with_a_note_without_a_cjk_font(monkeypatch, tmp_path, capsys):
    from gankit.theory import plots

    monkeypatch.setattr(plots, "find_cjk_font", lambda: None)
    seen = _capture_figures(monkeypatch)
    assert cli.main(["theory", "--quick", "--sections", "1", "--lang", "zh", "--out", str(tmp_path / "zh")]) == 0
    err = capsys.readouterr().err
    assert i18n.text("zh", "theory.fig.no_cjk_font") in err.splitlines()
    texts = [t for t, _ in seen["s1_optimal_d.png"]]
    assert i18n.text("en", "theory.fig.trained_d") in texts
    assert not any(re.search(r"[\u4e00-\u9fff]", t) for t in texts)
    # the report's words stay Chinese: only the figures fall back
    assert "最优判别器" in (tmp_path / "zh" / "report.md").read_text(encoding="utf-8")


def test_the_chinese_figure_differs_from_the_english_one(reports):
    from gankit.theory import plots

    if plots.find_cjk_font() is None:
        pytest.skip("no CJK font installed: both figures are drawn in English")
    en, zh = ((reports / lang / "s1_optimal_d.png").read_bytes() for lang in ("en", "zh"))
    assert en != zh
