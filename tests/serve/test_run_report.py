"""gankit report: one self-contained HTML file from a short real run; every image it embeds decodes and
equals the run's own files."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from gankit import GankitError, cli
from gankit.serve.report import build_report, write_report
from gankit.serve.svgplot import downsample, nice_ticks


class Refs(HTMLParser):
    """Every src/href attribute and every SVG polyline of a page."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.alts: list[str] = []
        self.polylines: list[str] = []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for a in ("src", "href"):
            if a in d:
                self.refs.append((tag, a, d[a]))
        if tag == "img":
            self.alts.append(d.get("alt", ""))
        if tag == "polyline":
            self.polylines.append(d["points"])


def decode(uri: str) -> Image.Image:
    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/gif;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def frames(im: Image.Image) -> list[np.ndarray]:
    out = []
    for i in range(im.n_frames):
        im.seek(i)
        out.append(np.asarray(im.convert("L")))
    return out


@pytest.fixture
def run_dir(runs_root, tmp_path):
    out = tmp_path / "fm"
    shutil.copytree(runs_root / "a", out)
    return out


def test_report_embeds_every_image_and_they_match_the_run(run_dir):
    html = write_report(run_dir).read_text()
    assert (run_dir / "report.html").is_file()
    p = Refs()
    p.feed(html)
    assert p.refs and all(v.startswith("data:") for _, _, v in p.refs)  # nothing outside the file
    assert not re.search(r"url\(|@import|<script|<link", html)
    imgs = {alt: decode(v) for (tag, _, v), alt in zip([r for r in p.refs if r[0] == "img"], p.alts)}
    assert set(imgs) == {"epoch 1 samples", "epoch 2 samples", "final samples", "training animation"}
    for name, file in (("epoch 1", "epoch_0001.png"), ("epoch 2", "epoch_0002.png"), ("final", "final.png")):
        np.testing.assert_array_equal(np.asarray(imgs[f"{name} samples"]),
                                      np.asarray(Image.open(run_dir / "samples" / file)))
    anim = frames(imgs["training animation"])  # one GIF frame per fixed-z grid, in epoch order
    assert len(anim) == 2
    for f, file in zip(anim, ("epoch_0001.png", "epoch_0002.png")):
        np.testing.assert_array_equal(f, np.asarray(Image.open(run_dir / "samples" / file)))
    # the two training charts draw every logged step (40 rows, under the 600-point pooling limit)
    assert len(p.polylines) == 4 and all(len(pl.split()) == 40 for pl in p.polylines)
    assert "digits (1797 images" in html and "40 of 40" in html
    assert json.loads((run_dir / "config.json").read_text())["preset"] == "seed"
    assert "Not evaluated" in html


def test_report_charts_metrics_over_time(run_dir):
    rows = [{"step": s, "fd10k": 100.0 / s, "modes": s // 10} for s in (10, 20, 40)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = build_report(run_dir)
    assert "Not evaluated" not in html
    p = Refs()
    p.feed(html)
    assert len(p.polylines) == 4 + 2  # fd10k and modes, three points each
    assert all(len(pl.split()) == 3 for pl in p.polylines[4:])
    assert "<td>fd10k</td><td>2.5</td>" in html  # the last evaluation's values


def test_report_animation_is_capped(run_dir):
    base = np.asarray(Image.open(run_dir / "samples" / "epoch_0002.png"))
    for e in range(3, 11):  # distinct frames: GIF writers merge equal neighbours
        Image.fromarray((base // 2 + 10 * e).astype(np.uint8)).save(run_dir / "samples" / f"epoch_{e:04d}.png")
    p = Refs()
    p.feed(build_report(run_dir, max_frames=4))
    gif = [decode(v) for t, _, v in p.refs if v.startswith("data:image/gif")]
    assert len(gif) == 1 and gif[0].n_frames == 4  # epochs 1, 4, 7, 10


def test_report_errors(tmp_path):
    with pytest.raises(GankitError, match="not a gankit run folder"):
        build_report(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(GankitError, match="config.json: not valid JSON"):
        build_report(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GankitError, match="--max-frames must be at least 1"):
        build_report(tmp_path, max_frames=0)
    assert "No log.csv rows yet" in build_report(tmp_path)  # a run that has not logged yet still reports


def test_report_cli_examples(run_dir, monkeypatch, capsys):
    monkeypatch.chdir(run_dir.parent)
    (run_dir.parent / "runs").mkdir()
    shutil.move(str(run_dir), run_dir.parent / "runs" / "fm")
    from gankit.serve.cli_report import EXAMPLES

    examples = [ln.split("#")[0].split()[1:] for ln in EXAMPLES.splitlines() if ln.strip().startswith("gankit ")]
    assert len(examples) == 3
    for args in examples:
        assert cli.main(args) == 0
    assert (run_dir.parent / "runs" / "fm" / "report.html").is_file() and (run_dir.parent / "fm.html").is_file()
    assert cli.main(["report", "nowhere"]) == 2
    assert "not a gankit run folder" in capsys.readouterr().err


def test_nice_ticks_and_downsample():
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    assert nice_ticks(0, 1, count=11) == pytest.approx([i / 10 for i in range(11)])
    assert nice_ticks(-3, 17) == [0, 5, 10, 15]
    assert nice_ticks(2, 2) == [2, 2.5, 3, 3.5, 4]  # a flat series gets a range of its own size
    x, y = np.arange(10.0), np.arange(10.0) ** 2
    dx, dy = downsample(x, y, max_points=3)  # pools of 4, the last incomplete pool dropped
    np.testing.assert_allclose(dx, [1.5, 5.5])
    np.testing.assert_allclose(dy, [(0 + 1 + 4 + 9) / 4, (16 + 25 + 36 + 49) / 4])
