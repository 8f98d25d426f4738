"""Bad checkpoints and a full disk: one-line errors, nothing lost."""
import io
import subprocess
import uuid

import pytest
import torch

import gankit
from gankit import cli
from gankit.checkpoint import load_checkpoint


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


@pytest.mark.parametrize("field,value,msg", [
    ("img_shape", [-1, 8, 8], r"img_shape \[-1, 8, 8\] is not \(C, H, W\) or \(D,\) of sizes 1 to 65536"),
    ("img_shape", [1, 100_000, 100_000], r"img_shape \[1, 100000, 100000\] is not \(C, H, W\)"),
    ("img_shape", "1x8x8", r"img_shape '1x8x8' is not"),
    ("img_shape", [1.5, 8, 8], r"img_shape \[1\.5, 8, 8\] is not"),
    ("img_shape", [True, 8, 8], r"img_shape \[True, 8, 8\] is not"),
    ("img_shape", [], r"img_shape \[\] is not"),
    ("img_shape", [1, 1, 8, 8], r"img_shape \[1, 1, 8, 8\] is not"),
    ("img_shape", [1, 30_000, 30_000], r"its G \(116,100,012,928 weights, images of shape \[1, 30000, 30000\]\) "
                                       r"would need 432\.5 GB"),
    ("step", "thirty", r"step 'thirty' is not an integer >= 0"),
    ("step", -5, r"step -5 is not an integer >= 0"),
    ("step", 2.5, r"step 2\.5 is not an integer >= 0"),
    ("num_classes", "ten", r"num_classes 'ten' is not an integer >= 0"),
    ("config", "seed", r"the checkpoint's config: config section <root> must be a mapping, got str"),
    ("G", "weights", r"G is a str, not a state dict"),
    ("G", {"net.0.weight": [1.0]}, r"the G weights hold something other than tensors"),
    ("format_version", "1", r"checkpoint format version '1' is not a version number"),
    ("lr_scale", "half", r"lr_scale 'half' is not in \(0, 1\]"),
    ("label_shares", [0.5, 0.5], r"label_shares \[0\.5, 0\.5\] are not 0 shares summing to 1"),
])
def test_crafted_checkpoint_fields_are_refused_in_one_line(run, tmp_path, refused, field, value, msg):
    bad = _rewrite(run, tmp_path, lambda s: s.update({field: value}))
    refused(["sample", bad, "--out", tmp_path / "o.npz"], tmp_path, rf"^gankit: error: {bad}: {msg}")


def test_a_crafted_checkpoint_in_a_run_folder_is_refused_on_resume(run, tmp_path, refused):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(run.run_dir, d)
    ck = d / "checkpoints" / "last.pt"
    ck.write_bytes(_rewrite(run, tmp_path, lambda s: s.update(step="thirty")).read_bytes())
    refused(["train", "--resume", d, "--steps", "40"], tmp_path, r"last\.pt: step 'thirty' is not an integer")


def test_foreign_files_say_what_they_are_without_warnings(run, tmp_path, refused):
    """A raw pickle used to print torch's pickle-protocol warning before the error; a text file was said to hold
    'pickled objects'."""
    import pickle
    import warnings

    (tmp_path / "raw.pt").write_bytes(pickle.dumps({"G": [1, 2, 3]}, protocol=4))
    (tmp_path / "notes.pt").write_text("a text file, not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    cases = [("raw.pt", r"not a checkpoint file: a plain pickle, not a torch archive \(gankit never unpickles "
                        r"objects\)"),
             ("notes.pt", "not a checkpoint file: it holds text"), ("empty.pt", "not a checkpoint file: it is empty")]
    for name, msg in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            refused(["sample", tmp_path / name, "--out", tmp_path / "o.npz"], tmp_path, rf"{name}: {msg}$")
        assert not caught, [str(w.message) for w in caught]
    d = tmp_path / "textrun"
    import shutil

    shutil.copytree(run.run_dir, d)
    (d / "checkpoints" / "last.pt").write_text("hello\n")
    refused(["sample", d, "--out", tmp_path / "o.npz"], tmp_path, r"last\.pt: not a checkpoint file: it holds text$")
    refused(["train", "--resume", d], tmp_path, r"last\.pt: not a checkpoint file: it holds text$")


@pytest.mark.parametrize("damage", ["binary", "folder"])
def test_resume_refuses_a_damaged_log_before_touching_the_run(run, tmp_path, refused, damage):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(run.run_dir, d)
    log = d / "log.csv"
    if damage == "binary":
        log.write_bytes(bytes(range(256)) * 8)
        msg = r"log\.csv: not a text file \(damaged\?\); move it away to resume"
    else:
        log.unlink()
        log.mkdir()
        msg = r"log\.csv is a folder, not the run's step log; move it away to resume"
    refused(["train", "--resume", d, "--steps", "40"], tmp_path, msg)
