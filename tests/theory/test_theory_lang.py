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
