"""Bad checkpoints and a full disk: one-line errors, nothing lost."""
import io
import subprocess
import uuid

import pytest
import torch

import gankit
from gankit import cli
from gankit.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 20, "train.progress": False})
    return gankit.train(cfg, tmp_path_factory.mktemp("r") / "run", log=lambda *_: None)


def _cli_error(args, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: ") and "\n" not in err
    return err


def test_truncated_checkpoint(run, tmp_path, capsys):
    data = run.checkpoint().read_bytes()
    for cut in (10, len(data) // 2, len(data) - 100):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        err = _cli_error(["sample", str(bad), "--n", "4", "--out", str(tmp_path / "o.npz")], capsys)
        assert "not a readable checkpoint (truncated or corrupted?)" in err
        assert not (tmp_path / "o.npz").exists()


def test_random_bytes_and_foreign_files(tmp_path, capsys):
    import random

    bad = tmp_path / "junk.pt"
    for seed in range(40):  # random bytes reach many corners of the unpickler
        rng = random.Random(seed)
        bad.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000))))
        err = _cli_error(["sample", str(bad), "--out", str(tmp_path / "o.npz")], capsys)
        assert "not a readable checkpoint" in err
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, foreign)
    assert "not a gankit checkpoint" in _cli_error(["sample", str(foreign), "--out", str(tmp_path / "o.npz")], capsys)
    empty_dir = tmp_path / "emptyrun"
    empty_dir.mkdir()
    assert "no checkpoints/last.pt" in _cli_error(["sample", str(empty_dir), "--out", str(tmp_path / "o.npz")], capsys)


def _rewrite(run, tmp_path, edit):
    state = load_checkpoint(run.checkpoint())
    edit(state)
    p = tmp_path / f"{uuid.uuid4().hex}.pt"
    buf = io.BytesIO()
    torch.save(state, buf)
    p.write_bytes(buf.getvalue())
    return p


def test_newer_format_and_other_model(run, tmp_path, capsys):
    newer = _rewrite(run, tmp_path, lambda s: s.update(format_version=99))
    assert "checkpoint format 99 is newer" in _cli_error(["sample", str(newer), "--out", str(tmp_path / "a.npz")],
                                                         capsys)

    def other_model(s):
        s["config"]["model"]["g_hidden"] = [64]
    other = _rewrite(run, tmp_path, other_model)
    err = _cli_error(["sample", str(other), "--out", str(tmp_path / "b.npz")], capsys)
    assert "G weights do not fit the model in its config" in err

    def bad_config(s):
        s["config"]["train"]["nonsense"] = 1
    cfg = _rewrite(run, tmp_path, bad_config)
    assert "unknown config key 'train.nonsense'" in _cli_error(["sample", str(cfg), "--out", str(tmp_path / "c.npz")],
                                                               capsys)


def test_resume_of_a_corrupted_last_checkpoint_leaves_it_alone(run, tmp_path, capsys):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(run.run_dir, d)
    ck = d / "checkpoints" / "last.pt"
    ck.write_bytes(ck.read_bytes()[:1000])
    before = ck.read_bytes()
    assert "not a readable checkpoint" in _cli_error(["train", "--resume", str(d)], capsys)
    assert ck.read_bytes() == before


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_a_clear_error_and_keeps_the_last_checkpoint(tiny_disk, capsys):
    out = tiny_disk / "run"
    args = ["train", "--dataset", "digits", "--steps", "2000", "--out", str(out), "--no-progress",
            "--train.checkpoint_every", "1", "--train.sample_every", "1"]
    err = _cli_error(args, capsys)
    assert "the disk is full" in err and "previous file (if any) is unchanged" in err
    state = load_checkpoint(out)  # the last complete checkpoint is still readable
    assert state["step"] > 0
    assert not list(out.rglob("*.tmp"))
