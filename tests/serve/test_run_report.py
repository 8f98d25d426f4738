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


def cells(html: str) -> list[list[str]]:
    """The rows of the report's evaluation table, as cell texts."""
    table = html.split('<table class="evals">', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", table)]


def test_report_shows_every_evaluation_with_its_floor(evaluated_run, evaluated_rows, tmp_path):
    """The README's own flow: `train --eval-every` rows (metrics.jsonl) and `gankit eval --json RUN/eval.json`
    both appear, each score at its step with the real-vs-real floor of that evaluation, in the table and as a
    chart against step; nothing of the records appears raw."""
    run = tmp_path / "ev"
    shutil.copytree(evaluated_run, run)
    html = build_report(run)
    section = html.split("<h2>Evaluations</h2>")[1].split("<h2>")[0]
    assert "Not evaluated" not in section and "{" not in section
    assert cells(html) == [["step", "score", "value", "real-vs-real floor", "N fake", "from"]] + evaluated_rows
    assert [r[1] for r in evaluated_rows] == ["fd300", "pr300_k3 precision", "pr300_k3 recall"] * 2 + [
        "fd400", "pr400_k3 precision", "pr400_k3 recall"]
    fd = json.loads((run / "eval.json").read_text())["metrics"]["fd400"]
    assert 10 < fd["fd"] and fd["floor"]["fd"] < fd["fd"]  # a real score of a 2-epoch run, above its floor
    # one chart per score, titled by it: FD and the other scores against step, never epoch or seconds
    svgs = re.findall(r'<svg [^>]*aria-label="([^"]*)"', html)
    assert svgs[2:] == ["fd300", "pr300_k3 precision", "pr300_k3 recall", "fd400", "pr400_k3 precision",
                        "pr400_k3 recall"]
    p = Refs()
    p.feed(html)
    assert [len(pl.split()) for pl in p.polylines[4:]] == [2, 2, 2]  # the three training scores, at 2 steps
    fd_chart = html.split('aria-label="fd300"')[1].split("</svg>")[0]
    assert f"real-vs-real floor {evaluated_rows[0][3]}" in fd_chart
    assert fd_chart.count('stroke-dasharray="4 3"') == 2  # the floor, and its legend


def test_report_reads_an_eval_report_alone(evaluated_run, tmp_path):
    """`gankit eval RUN --json RUN/eval.json` without --eval-every: the report used to say "Not evaluated"."""
    run = tmp_path / "ev"
    shutil.copytree(evaluated_run, run)
    (run / "metrics.jsonl").unlink()
    (run / "eval.json").rename(run / "scores at the end.json")  # any name: the content says what it is
    html = build_report(run)
    report = json.loads((run / "scores at the end.json").read_text())
    fd = report["metrics"]["fd400"]
    assert "Not evaluated" not in html
    assert cells(html)[1] == [str(report["run"]["step"]), "fd400", f"{fd['fd']:.4g}", f"{fd['floor']['fd']:.4g}",
                              "400", "scores at the end.json"]


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
    for member in ("seed0", "seed1"):  # a --seeds folder: member run folders listed in ensemble.json
        shutil.copytree(run_dir.parent / "runs" / "fm", run_dir.parent / "runs" / "ring8" / member)
    (run_dir.parent / "runs" / "ring8" / "ensemble.json").write_text('{"members": ["seed0", "seed1"]}\n')
    from gankit.serve.cli_report import EXAMPLES

    examples = [ln.split("#")[0].split()[1:] for ln in EXAMPLES.splitlines() if ln.strip().startswith("gankit ")]
    assert len(examples) == 4
    for args in examples:
        assert cli.main(args) == 0
    assert (run_dir.parent / "runs" / "fm" / "report.html").is_file() and (run_dir.parent / "fm.html").is_file()
    assert all((run_dir.parent / "runs" / "ring8" / m / "report.html").is_file() for m in ("seed0", "seed1"))
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


@pytest.mark.parametrize("name,text,msg", [
    ("config.json", "[1, 2]", r"config\.json: expected a JSON object, found a list \(damaged\?\)$"),
    ("config.json", '"seed"', r"config\.json: expected a JSON object, found a string"),
    ("config.json", "3", r"config\.json: expected a JSON object, found a number"),
    ("config.json", '{"model": "mlp"}', r"config\.json: 'model' is a string, expected an object \(damaged\?\)$"),
    ("config.json", '{"loss": [1]}', r"config\.json: 'loss' is a list, expected an object"),
    ("manifest.json", "[1, 2]", r"manifest\.json: expected a JSON object, found a list"),
    ("manifest.json", '{"dataset": "digits"}', r"manifest\.json: 'dataset' is a string, expected an object"),
    ("manifest.json", '{"parameters": [1, 2]}', r"manifest\.json: 'parameters' is a list, expected an object"),
    ("manifest.json", '{"argv": 5}', r"manifest\.json: 'argv' is a number, expected a list"),
    ("manifest.json", b"\x00\xff\xfe", r"manifest\.json: not valid JSON \(damaged\?\)"),
    ("log.csv", bytes(range(256)), r"log\.csv: not a text file \(damaged\?\)"),
])
def test_report_refuses_files_of_the_wrong_type_in_one_line(run_dir, tmp_path, refused, name, text, msg):
    f = run_dir / name
    f.write_bytes(text) if isinstance(text, bytes) else f.write_text(text)
    refused(["report", run_dir, "--out", tmp_path / "r.html"], tmp_path, msg)


def test_report_refuses_a_folder_as_its_log(run_dir, tmp_path, refused):
    (run_dir / "log.csv").unlink()
    (run_dir / "log.csv").mkdir()
    refused(["report", run_dir, "--out", tmp_path / "r.html"], tmp_path,
            r"log\.csv is a folder, not the run's step log")
