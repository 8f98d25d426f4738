"""``gankit theory``: the quick run writes every figure the report names; the --help examples parse."""
from __future__ import annotations

import json
import re
import shlex
import time

import pytest

from gankit import cli
from gankit.errors import GankitError
from gankit.theory import command


def test_quick_run_writes_every_figure(tmp_path):
    out = tmp_path / "tmp"
    t0 = time.process_time()  # CPU time: wall time depends on what else the machine runs
    assert cli.main(["theory", "--quick", "--out", str(out)]) == 0
    assert time.process_time() - t0 < 60
    md = (out / "report.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figures) == 8
    for f in figures:
        assert (out / f).stat().st_size > 1000
        magic = b"GIF89a" if f.endswith(".gif") else b"\x89PNG\r\n\x1a\n"
        assert (out / f).read_bytes()[:len(magic)] == magic
    html = (out / "index.html").read_text()
    assert sorted(re.findall(r"<img src='([^']+)'", html)) == sorted(figures)
    results = json.loads((out / "results.json").read_text())
    assert set(results["sections"]) == {"optimal_d", "value_of_game", "training_dynamics", "non_saturating",
                                        "mode_collapse"}
    assert sorted(results["meta"]["figures"]) == sorted(figures)
    for row in results["sections"]["value_of_game"]["pairs"]:  # the quadrature column is the §5 table
        assert row["c_quadrature"] == pytest.approx(row["reference_c"], abs=1e-5)
    # a second run into the same folder needs --overwrite
    assert cli.main(["theory", "--quick", "--sections", "1", "--out", str(out)]) == 2


def test_help_examples_parse():
    parser = cli._parser()
    lines = [ln.split("#")[0].strip() for ln in command.EXAMPLES.splitlines() if ln.strip().startswith("gankit ")]
    assert len(lines) >= 3
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])
        assert args.command == "theory"
        command.parse_sections(args.sections)


def test_bad_arguments(tmp_path):
    parser = cli._parser()
    with pytest.raises(GankitError, match="--sections must be numbers 1-5"):
        command.run(parser.parse_args(["theory", "--sections", "1,7", "--out", str(tmp_path / "a")]))
    with pytest.raises(GankitError, match="--pack must be between 2 and 4"):
        command.run(parser.parse_args(["theory", "--pack", "9", "--out", str(tmp_path / "a")]))
    # --pack only reaches section 5: with it left out, the option would change nothing
    with pytest.raises(GankitError, match=r"^--pack sets PacGAN's m in section 5, which --sections 1,2 leaves out$"):
        command.run(parser.parse_args(["theory", "--pack", "3", "--sections", "1,2", "--out", str(tmp_path / "a")]))
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.md").write_text("old")
    with pytest.raises(GankitError, match="pass --overwrite"):
        command.run(parser.parse_args(["theory", "--out", str(tmp_path / "b")]))
    assert (tmp_path / "b" / "report.md").read_text() == "old"
