"""scripts/zoo_results.py: the toy tables from cached runs, and rewriting one section of docs/ZOO.md alone."""
import json
import math
import subprocess
import sys
from pathlib import Path


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "zoo_results.py"


def run(*args):
    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stderr
    return r


def fake_result(runs: Path, name: str, epochs: int, seed: int, modes: int, hq: float) -> None:
    d = runs / "toy" / f"{name}-{epochs}ep" / f"seed{seed}"  # a --seeds folder's member
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps({"steps": 1, "modes": modes, "num_modes": 8, "high_quality": hq,
                                               "kl": 0.1, "n": 2500, "trained_on": "a test"}))


def test_cached_toy_table_is_the_mean_and_standard_error_and_other_sections_survive(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "ZOO.md"
    modes, hqs = [8, 6, 7], [0.95, 0.90, 0.80]
    for seed, (m, h) in enumerate(zip(modes, hqs)):
        fake_result(runs, "pacgan-ring8", 400, seed, m, h)
    out.write_text("# old title\n\nold preamble\n\n## Fashion-MNIST at equal wall-clock\n\nkept text\n")
    args = ["--sections", "toy", "--toy-epochs", "400", "--seeds", "3", "--cached", "--runs", str(runs),
            "--out", str(out)]
    run(*args)
    text = out.read_text()
    se_m = math.sqrt(sum((m - 7) ** 2 for m in modes) / 2 / 3)
    mean_h = 100 * sum(hqs) / 3
    se_h = 100 * math.sqrt(sum((h - sum(hqs) / 3) ** 2 for h in hqs) / 2 / 3)
    row = next(ln for ln in text.splitlines() if ln.startswith("| gankit pacgan-*"))
    assert row.split(" | ")[1:3] == [f"7.0 ± {se_m:.1f}", f"{mean_h:.1f} ± {se_h:.1f}"]
    assert "not run" in row  # grid25 has no runs
    assert "| gankit gan-* (GAN: same nets, no packing) | not run | not run | not run | not run |" in text
    assert "Not run yet at 400 epochs" in text and "Trained on: a test." in text
    assert "kept text" in text and "old preamble" not in text
    assert text.index("## 2-D mixtures") < text.index("## Fashion-MNIST")
    run(*args)  # rewriting the section again changes nothing
    assert out.read_text() == text


def test_one_table_per_budget(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "ZOO.md"
    fake_result(runs, "gan-ring8", 30, 0, 5, 0.5)
    run("--sections", "toy", "--toy-epochs", "400,30", "--seeds", "1", "--cached", "--runs", str(runs), "--out",
        str(out))
    text = out.read_text()
    assert text.index("### 400 epochs") < text.index("### 30 epochs (7.5 % of the protocol's training)")
    assert "`gan-ring8`: 5/50.0%/KL 0.100" in text


def test_toy_presets_trains_only_those_and_reads_the_rest(tmp_path):
    """--toy-presets: the named presets' runs are trained where they have no result (here all are scored
    already, so nothing trains), the others are read from their result.json or listed as not run."""
    runs, out = tmp_path / "runs", tmp_path / "ZOO.md"
    for seed in range(2):
        fake_result(runs, "pacgan-ring8", 7, seed, 8, 0.9)
        fake_result(runs, "gan-grid25", 7, seed, 20, 0.5)
    run("--sections", "toy", "--toy-epochs", "7", "--seeds", "2", "--toy-presets", "pacgan-ring8", "--runs", str(runs),
        "--out", str(out))
    text = out.read_text()
    assert "| gankit pacgan-* (PacGAN4) | 8.0 ± 0.0 | 90.0 ± 0.0 | not run | not run |" in text
    assert "| gankit gan-* (GAN: same nets, no packing) | not run | not run | 20.0 ± 0.0 | 50.0 ± 0.0 |" in text
    # the trained preset's seeds form a gankit train --seeds folder; the others were only read
    members = json.loads((runs / "toy" / "pacgan-ring8-7ep" / "ensemble.json").read_text())["members"]
    assert members == ["seed0", "seed1"]
    assert not (runs / "toy" / "gan-grid25-7ep" / "ensemble.json").exists()


def test_scores_kept_beside_the_document_rebuild_the_tables_without_the_run_folders(tmp_path):
    import shutil

    runs, out = tmp_path / "runs", tmp_path / "docs" / "ZOO.md"
    fake_result(runs, "gan-ring8", 9, 0, 6, 0.75)
    args = ["--sections", "toy", "--toy-epochs", "9", "--seeds", "1", "--cached", "--runs", str(runs), "--out",
            str(out)]
    run(*args)
    first = out.read_text()
    kept = json.loads((tmp_path / "docs" / "zoo" / "toy_runs.json").read_text())
    assert kept["gan-ring8-9ep-seed0"]["modes"] == 6
    shutil.rmtree(runs)
    run(*args)
    assert out.read_text() == first and "`gan-ring8`: 6/75.0%/KL 0.100" in first


def test_together_trains_both_methods_in_lockstep_and_scores_every_run(tmp_path, monkeypatch):
    """--ensemble --together on tiny networks: both methods' ensembles train in one loop, every run is scored by
    the protocol's metric, and each run says how it trained."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_results", SCRIPT)
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    real_cfg = zoo._toy_cfg

    def tiny(name, *a, **kw):  # 1/500 of the data: 2 steps per epoch for both methods, as 1,000 in the protocol
        c = real_cfg(name, *a, **kw)
        return c.with_overrides({"model.g_hidden": (16, 16), "model.d_hidden": (8, 8), "train.log_every": 1,
                                 "data.size": (c.data.size or 100_000) // 500})
    monkeypatch.setattr(zoo, "_toy_cfg", tiny)
    args = zoo.argparse.Namespace(seeds=1, runs=tmp_path, device="cpu", force=False, threads=0, cuda_graphs=False)
    jobs = zoo._toy_jobs(args, 2)
    infos = zoo._toy_ensembles(jobs, False, together=True)
    assert len(infos) == 4
    for job, info in zip(jobs, infos):
        assert info["steps"] == 4 and 0 <= info["modes"] <= info["num_modes"] and info["n"] == 2500
        other = "gan" if job[0].startswith("pacgan") else "pacgan"
        assert f"in lockstep with the {other}-* ensemble" in info["trained_on"]
        saved = json.loads((Path(job[5]) / "result.json").read_text())
        assert saved["modes"] == info["modes"]
    # each preset's seeds form a gankit train --seeds folder, which gankit eval, report and serve read as one
    from gankit.checkpoint import seed_members

    for name in ("pacgan-ring8", "gan-ring8", "pacgan-grid25", "gan-grid25"):
        root = tmp_path / "toy" / f"{name}-2ep"
        assert json.loads((root / "ensemble.json").read_text()) == {"members": ["seed0"], "seeds": [0]}
        assert seed_members(root) == [root / "seed0"] and (root / "seed0" / "checkpoints" / "last.pt").is_file()


def test_stacked_section_scores_both_presets_and_the_real_floor(tmp_path, monkeypatch):
    """--sections stacked on a tiny MNIST-format source whose classes a classifier reads without error (class k
    lights band k): the real stacks cover ~all 1,000 modes at the finite-sample KL (about 999 / (2 · 26,000)),
    both presets train and are scored by the protocol's 26,000 samples, and a rerun retrains nothing."""
    import dataclasses
    import importlib.util
    import itertools

    import numpy as np

    from gankit.data.idx import write_idx
    from gankit.training import budget

    spec = importlib.util.spec_from_file_location("zoo_results", SCRIPT)
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4:2 * k + 6, 4:24] = 255
        write_idx(src / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(src / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    real_cfg, real_data = zoo._stacked_cfg, zoo._stacked_data
    monkeypatch.setattr(zoo, "_stacked_data", lambda args: dataclasses.replace(real_data(args), size=26_000))
    monkeypatch.setattr(zoo, "_stacked_cfg", lambda preset, args: real_cfg(preset, args).with_overrides({
        "model.g_channels": 4, "model.d_channels": 4, "train.batch_size": 8, "data.size": 800}))
    out = tmp_path / "docs" / "ZOO.md"
    # the budget of each run stops it after 20 steps: the clock gankit's loop reads advances one second a step
    ticks = itertools.count()
    monkeypatch.setattr(budget, "clock", lambda: float(next(ticks)))
    argv = ["--sections", "stacked", "--stacked-base", "idx", "--stacked-dir", str(src), "--stacked-seconds", "20",
            "--runs", str(tmp_path / "runs"), "--out", str(out)]
    assert zoo.main(argv) == 0
    text = out.read_text()
    assert "## Stacked IDX images (docs/PROTOCOLS.md §2)" in text
    floor = json.loads((tmp_path / "runs" / "stacked" / "real_floor.json").read_text())
    assert floor["n"] == 26_000 and floor["modes"] >= 990 and 0.01 < floor["kl_to_uniform"] < 0.035
    assert f"| real stacks (floor) | | | {floor['modes']} | {floor['kl_to_uniform']:.3f} |" in text
    for preset in zoo.STACKED_PRESETS:
        r = json.loads((tmp_path / "runs" / "stacked" / preset / "result.json").read_text())
        assert r["steps"] == 20 and r["n"] == 26_000 and 1 <= r["modes"] <= 1000
        assert r["epochs"] == 20 * 8 / 800
        assert f"| {preset} | 20 | 0.20 | {r['modes']} | {r['kl_to_uniform']:.3f} |" in text
        assert (out.parent / "zoo" / f"stacked-{preset}.png").is_file()
    assert zoo.main(argv) == 0  # everything cached: the same document
    assert out.read_text() == text
