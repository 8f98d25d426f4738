"""The run folder is gankit's, and only gankit's (issue #16): --overwrite, bare checkpoints, the lock, the
folder's description after a resume, foreign checkpoints and presets, epoch checkpoints across a kill."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import gankit
from gankit import cli
from gankit.checkpoint import load_checkpoint
from gankit.rundir import read_log

SPE = 17  # digits at batch 100: steps per epoch
LOCK_FILE = ".gankit.lock"  # in the run folder while a process trains into it (README: the run folder)


def cfg(steps, **kw):
    over = {"data.name": "digits", "train.steps": steps, "train.progress": False, "train.log_every": 5,
            "train.sample_every": 1, "train.checkpoint_every": 1}
    over.update(kw)
    return gankit.preset("seed").with_overrides(over)


def quiet(*_):
    pass


def _cli_error(args, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and "\n" not in err, err
    return err


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _same_weights(a, b):
    import torch

    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert sa["step"] == sb["step"]
    for key in ("G", "D"):
        assert sa[key].keys() == sb[key].keys()
        for k in sa[key]:
            assert torch.equal(sa[key][k], sb[key][k]), (key, k)


@pytest.fixture(scope="module")
def run34(tmp_path_factory):
    """Two epochs on digits, with per-epoch samples and checkpoints."""
    return gankit.train(cfg(2 * SPE), tmp_path_factory.mktemp("r") / "run", log=quiet)


# -- --overwrite ------------------------------------------------------------------------------------
def test_overwrite_refuses_foreign_files_and_deletes_nothing(run34, tmp_path, capsys):
    d = tmp_path / "r"
    shutil.copytree(run34.run_dir, d)
    (d / "notes.txt").write_text("mine")
    (d / "samples" / "mine.png").write_bytes(b"not gankit's")
    (d / "settings.json").write_text('{"metrics": "mine"}')  # JSON, but no gankit eval report
    before = _files(d)
    err = _cli_error(["train", "--dataset", "digits", "--steps", "3", "--out", str(d), "--overwrite"], capsys)
    assert "--overwrite" in err and "notes.txt" in err and "samples/mine.png" in err and "gankit did not write" in err
    assert "settings.json" in err
    assert _files(d) == before  # refused before anything was deleted


def test_overwrite_removes_every_file_gankit_wrote_and_only_those(run34, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(run34.run_dir, d)
    (d / "metrics.jsonl").write_text('{"step": 999}\n')
    (d / "report.html").write_text("<html>")
    (d / "tensorboard").mkdir()
    (d / "tensorboard" / "events.out.tfevents.1700000000.host.1.0").write_bytes(b"x")
    (d / "checkpoints" / "nonfinite_step_9.pt").write_bytes(b"x")
    (d / "checkpoints" / ".last.pt.ab12cd34.tmp").write_bytes(b"x")  # a killed atomic write
    shutil.copytree(run34.run_dir, d / "seed3")  # an old --seeds run's member folder
    (d / "ensemble.json").write_text('{"members": ["seed3"]}\n')
    (d / "eval.json").write_text('{"run": {"step": 34}, "metrics": {"fd300": {"value": 12.5}}}\n')  # README's
    gankit.train(cfg(3, **{"train.checkpoint_every": 0}), d, overwrite=True, log=quiet)
    assert sorted(_files(d)) == ["checkpoints/last.pt", "config.json", "log.csv", "loss.png", "manifest.json",
                                 "samples/final.png"]
    assert read_log(d / "log.csv")["step"] == [1.0, 2.0, 3.0]


# -- bare checkpoints ---------------------------------------------------------------------------------
def test_a_bare_checkpoint_resumes_only_into_a_new_folder(run34, tmp_path, capsys):
    bare = tmp_path / "some" / "dir" / "model.pt"
    bare.parent.mkdir(parents=True)
    shutil.copy(run34.run_dir / "checkpoints" / "epoch_0001.pt", bare)
    (bare.parent / "log.csv").write_text("unrelated\n")
    (bare.parent / ".x.tmp").write_text("unrelated")
    before = _files(tmp_path)
    err = _cli_error(["train", "--resume", str(bare), "--steps", str(2 * SPE)], capsys)
    assert str(bare) in err and "--out NEW" in err
    assert _files(tmp_path) == before and sorted(os.listdir(tmp_path / "some")) == ["dir"]
    # with --out: step 17 -> 34 in the new folder, bit for bit the run the checkpoint came from
    new = tmp_path / "new"
    assert cli.main(["train", "--resume", str(bare), "--out", str(new), "--steps", str(2 * SPE),
                     "--train.sample_every", "1", "--train.checkpoint_every", "1"]) == 0
    assert _files(tmp_path / "some") == {k[5:]: v for k, v in before.items() if k.startswith("some/")}
    _same_weights(new / "checkpoints" / "last.pt", run34.checkpoint())
    assert read_log(new / "log.csv") == {k: v[SPE:] for k, v in read_log(run34.run_dir / "log.csv").items()}
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["resumed_from"] == str(bare.resolve()) and manifest["invocations"][0]["step"] == SPE
    # a checkpoint inside a run folder's checkpoints/ still continues that run, from its step
    d = tmp_path / "copy"
    shutil.copytree(run34.run_dir, d)
    assert cli.main(["train", "--resume", str(d / "checkpoints" / "epoch_0001.pt"), "--steps", str(2 * SPE)]) == 0
    assert read_log(d / "log.csv") == read_log(run34.run_dir / "log.csv")
    _same_weights(d / "checkpoints" / "last.pt", run34.checkpoint())


# -- the lock ---------------------------------------------------------------------------------------
def _wait_for_holder(lock, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            return json.loads(lock.read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise TimeoutError(lock)


def test_a_second_process_is_refused_and_a_dead_holder_blocks_nothing(run34, tmp_path, capsys):
    d = tmp_path / "r"
    shutil.copytree(run34.run_dir, d)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "gankit", "train", "--resume", str(d), "--steps", "100000",
                          "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        holder = _wait_for_holder(d / LOCK_FILE)
        assert holder["pid"] == p.pid
        err = _cli_error(["train", "--resume", str(d), "--steps", "100"], capsys)
        assert f"{d} is in use by pid {p.pid} (gankit train --resume {d} --steps 100000" in err
        assert "wait for it to finish or stop it" in err
        err = _cli_error(["train", "--dataset", "digits", "--out", str(d), "--overwrite"], capsys)
        assert f"in use by pid {p.pid}" in err
        assert (d / "checkpoints" / "last.pt").is_file()
    finally:
        p.kill()  # SIGKILL: no cleanup; the lock file stays behind
        p.wait()
    assert (d / LOCK_FILE).is_file()
    step = load_checkpoint(d)["step"]
    assert cli.main(["train", "--resume", str(d), "--steps", str(step + 5), "--no-progress"]) == 0
    assert not (d / LOCK_FILE).exists()
    assert read_log(d / "log.csv")["step"] == [float(s) for s in range(1, step + 6)]


# -- the folder describes the run as it is now -------------------------------------------------------
def test_resume_with_a_new_budget_rewrites_config_and_manifest(tmp_path, monkeypatch):
    from gankit.serve.report import build_report

    d = tmp_path / "r"
    first = ["train", "--dataset", "digits", "--epochs", "1", "--out", str(d), "--no-progress"]
    second = ["train", "--resume", str(d), "--epochs", "2", "--no-progress"]
    for argv in (first, second):
        monkeypatch.setattr(sys, "argv", ["gankit", *argv])
        assert cli.main(argv) == 0
    config = json.loads((d / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["steps"] is None
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["total_steps"] == 2 * SPE and manifest["steps_per_epoch"] == SPE
    assert [(r["argv"][1:], r["step"], r["total_steps"]) for r in manifest["invocations"]] == [
        (first, 0, SPE), (second, SPE, 2 * SPE)]
    assert manifest["argv"][1:] == second
    html = build_report(d)
    assert f"{2 * SPE} of {2 * SPE}" in html and "--epochs 2" in html


# -- resume refuses another model ----------------------------------------------------------------------
def test_resume_refuses_another_preset_or_dataset(run34, tmp_path, capsys):
    d = tmp_path / "r"
    shutil.copytree(run34.run_dir, d)
    before = _files(d)
    err = _cli_error(["train", "--resume", str(d), "--preset", "gan-ring8"], capsys)
    assert "preset seed" in err and "drop --preset gan-ring8" in err
    err = _cli_error(["train", "--resume", str(d), "--dataset", "ring8"], capsys)
    assert "data settings differ" in err
    assert _files(d) == before


def test_resume_refuses_another_models_checkpoint_copied_over_last_pt(run34, tmp_path, capsys):
    other = gankit.train(cfg(3, **{"model.g_hidden": "64", "train.checkpoint_every": 0, "train.sample_every": 0}),
                         tmp_path / "other", log=quiet)
    d = tmp_path / "r"
    shutil.copytree(run34.run_dir, d)
    shutil.copy(other.checkpoint(), d / "checkpoints" / "last.pt")
    before = _files(d)
    err = _cli_error(["train", "--resume", str(d), "--steps", "100"], capsys)
    assert "is not this run's checkpoint" in err and "model settings differ" in err and "--out NEW" in err
    assert _files(d) == before


# -- epoch checkpoints survive a kill between the two writes at an epoch's end ----------------------------
class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it, nothing after it runs."""


@pytest.mark.parametrize("when", ["during the first write", "between the writes"])
def test_a_kill_at_an_epoch_end_never_loses_its_epoch_checkpoint(run34, tmp_path, monkeypatch, when):
    import importlib

    ck = importlib.import_module("gankit.checkpoint")

    real = ck.atomic_write_bytes
    writes = []

    def write(path, data):  # epoch 1 ends with two checkpoint writes; the kill comes at epoch 2's first
        if path.suffix == ".pt":
            writes.append(path.name)
            if len(writes) == 3:
                if when == "between the writes":
                    real(path, data)
                raise Killed
        return real(path, data)
    monkeypatch.setattr(ck, "atomic_write_bytes", write)
    d = tmp_path / "r"
    with pytest.raises(Killed):
        gankit.train(cfg(2 * SPE), d, log=quiet)
    assert len(writes) == 3
    monkeypatch.setattr(ck, "atomic_write_bytes", real)
    gankit.train(cfg(2 * SPE), d, resume=True, log=quiet)
    for name in ("epoch_0001.pt", "epoch_0002.pt", "last.pt"):
        _same_weights(d / "checkpoints" / name, run34.run_dir / "checkpoints" / name)
    assert read_log(d / "log.csv") == read_log(run34.run_dir / "log.csv")
