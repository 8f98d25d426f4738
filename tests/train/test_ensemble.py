"""Ensembles (train/ensemble.py): K runs trained as one batched network must be K independent runs."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit.data import to_unit_range
from gankit.training.ensemble import Ensemble, check_members, fit_together, parse_seeds, seed_configs
from gankit.training.loop import Trainer, epoch_permutation

TINY_TOY = {"model.g_hidden": (24, 24), "model.d_hidden": (16, 16), "model.maxout_pieces": 3, "data.size": 1200}


def cfg(preset, **kw):
    over = {"train.progress": False, "train.sample_every": 0, "train.checkpoint_every": 0, "train.device": "cpu",
            "train.log_every": 7}
    over.update(kw)
    return gankit.preset(preset).with_overrides(over)


def quiet(*_):
    pass


CASES = {
    "gan-ring8 (plain autograd step)": ("gan-ring8", {**TINY_TOY, "train.batch_size": 40}),
    "gan-ring8, alternating updates": ("gan-ring8", {**TINY_TOY, "train.batch_size": 40,
                                                     "train.updates": "alternating"}),
    "pacgan-grid25 (pack 4, G batch norm)": ("pacgan-grid25", {**TINY_TOY, "train.batch_size": 40}),
    "seed (fused MLP step)": ("seed", {"data.name": "digits", "model.g_hidden": (32,), "model.d_hidden": (32,),
                                       "train.batch_size": 50}),
    "dcgan with D batch norm (two D passes)": ("dcgan-mnist", {"data.name": "digits", "model.g_channels": 4,
                                                               "model.d_channels": 4, "train.batch_size": 16}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_member_steps_exactly_like_its_single_run(tmp_path, case):
    """Given the same batches and latents, member k's parameters, buffers and statistics after 3 steps equal
    those of a single Trainer of the same seed (up to float rounding of batched vs single matmuls)."""
    preset, over = CASES[case]
    cfgs = seed_configs(cfg(preset, **over, **{"train.steps": 3}), [0, 1, 2])
    ens = Ensemble(cfgs, [tmp_path / f"e{k}" for k in range(3)], log=quiet)
    singles = [Trainer(c, tmp_path / f"s{k}", log=quiet) for k, c in enumerate(cfgs)]
    B = cfgs[0].train.batch_size
    gen = torch.Generator().manual_seed(123)
    for step in range(3):
        rows = [torch.randperm(len(s.data), generator=gen)[:B] for s in singles]
        raw = [s.data.images[r] for s, r in zip(singles, rows)]
        z = torch.randn(3, B, cfgs[0].model.z_dim, generator=gen)
        got = ens.update(torch.stack([to_unit_range(x) for x in raw]), z)
        for k, s in enumerate(singles):
            want = s.train_step([raw[k]], None, [(z[k], None)])
            torch.testing.assert_close(got[k], want, rtol=1e-4, atol=1e-5)
    for k, s in enumerate(singles):
        for name, net in (("G", ens.G), ("D", ens.D)):
            mine = net.member_state(k)
            theirs = getattr(s, name).state_dict()
            assert mine.keys() == theirs.keys()
            for key in theirs:
                torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=2e-5, msg=f"{name}.{key}")


def test_members_start_from_their_single_runs_initial_weights(tmp_path):
    c = cfg("pacgan-ring8", **TINY_TOY, **{"train.steps": 1})
    ens = Ensemble(seed_configs(c, [3, 4]), [tmp_path / "a", tmp_path / "b"], log=quiet)
    for k, seed in enumerate((3, 4)):
        single = Trainer(c.with_overrides({"train.seed": seed, "data.seed": seed}), tmp_path / f"s{seed}", log=quiet)
        for key, v in single.G.state_dict().items():
            assert torch.equal(ens.G.member_state(k)[key], v), key
        assert torch.equal(ens.data[ens.offsets[k, 0]:ens.offsets[k, 0] + len(single.data)], single.data.images)
    assert not torch.equal(ens.G.member_state(0)["net.0.weight"], ens.G.member_state(1)["net.0.weight"])


def test_batches_follow_each_members_epoch_permutation_and_latents_differ(tmp_path, monkeypatch):
    c = cfg("gan-grid25", **TINY_TOY, **{"train.batch_size": 100, "train.epochs": 2})
    ens = Ensemble(seed_configs(c, [0, 5]), [tmp_path / "a", tmp_path / "b"], log=quiet)
    seen = []

    def record(real, z):
        seen.append((real.clone(), z.clone()))
        return torch.zeros(ens.K, 4)
    monkeypatch.setattr(ens, "update", record)
    ens.fit()
    spe = ens.spe
    assert len(seen) == 2 * spe == 24
    for k, seed in enumerate((0, 5)):
        data = ens.members[k].data.images
        for step, (real, _) in enumerate(seen):
            perm = epoch_permutation(len(data), seed, step // spe)
            rows = perm[(step % spe) * 100:(step % spe + 1) * 100]
            assert torch.equal(real[k], data[rows]), (k, step)
    z = torch.cat([s[1] for s in seen], dim=1)  # (K, steps·B, 2)
    assert not torch.allclose(z[0], z[1])
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_member_folders_are_ordinary_run_folders(tmp_path):
    c = cfg("pacgan-ring8", **TINY_TOY, **{"train.epochs": 2})
    outs = [tmp_path / "m0", tmp_path / "m1"]
    ens = Ensemble(seed_configs(c, [0, 1]), outs, log=quiet)
    results = ens.fit()
    assert [r.step for r in results] == [2 * ens.spe] * 2
    z = torch.randn(2, 300, 2, generator=torch.Generator().manual_seed(0))
    ens.G.train(False)
    with torch.no_grad():
        want = ens.G(z)
    for k, out in enumerate(outs):
        g = gankit.load(out)
        assert g.step == 2 * ens.spe
        torch.testing.assert_close(g.sample(300, z=z[k]), want[k], rtol=1e-5, atol=1e-6)
        log = (out / "log.csv").read_text().splitlines()
        assert len(log) == 1 + 2 * ens.spe and log[-1].startswith(f"{2 * ens.spe},2,")
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["ensemble"] == {"members": 2, "index": k, "seeds": [0, 1], "cuda_graphs": False}
        assert (out / "samples" / "final.png").is_file()
    # a member continues alone as a single run, from the ensemble's weights and Adam state
    single = Trainer(c.with_overrides({"train.seed": 1, "data.seed": 1, "train.epochs": 3}), outs[1], resume=True,
                     log=quiet)
    for key, v in single.G.state_dict().items():
        torch.testing.assert_close(v, ens.G.member_state(1)[key])
    st = single.opt_D.state_dict()["state"][0]
    assert float(st["step"]) == 2 * ens.spe
    torch.testing.assert_close(st["exp_avg"], ens.opt_D.state_dict()["state"][0]["exp_avg"][1])
    assert single.fit().step == 3 * ens.spe


def test_a_stopped_ensemble_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    c = cfg("pacgan-ring8", **TINY_TOY, **{"train.epochs": 3})
    cfgs = seed_configs(c, [0, 1])
    straight = Ensemble(cfgs, [tmp_path / "a0", tmp_path / "a1"], log=quiet)
    straight.fit()
    outs = [tmp_path / "b0", tmp_path / "b1"]
    first = Ensemble(cfgs, outs, log=quiet)
    stop_at = first.spe + 2  # mid-epoch: the epoch's latents must be redrawn identically on resume
    real_step = first._step

    def step_then_maybe_stop():
        real_step()
        if first.step + 1 == stop_at:
            first.stop()
    monkeypatch.setattr(first, "_step", step_then_maybe_stop)
    assert first.fit()[0].step == stop_at
    resumed = Ensemble([gankit.RunConfig.from_dict(json.loads((o / "config.json").read_text())) for o in outs],
                       outs, resume=True, log=quiet)
    assert resumed.step == stop_at
    resumed.fit()
    for net in ("G", "D"):
        for k in range(2):
            a, b = getattr(straight, net).member_state(k), getattr(resumed, net).member_state(k)
            for key in a:
                torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=f"{net}[{k}].{key}")
    log = (outs[0] / "log.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in log[1:]] == list(range(1, 3 * first.spe + 1))


@pytest.mark.parametrize("text,want", [("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0-1,7,9", [0, 1, 7, 9])])
def test_parse_seeds(text, want):
    assert parse_seeds(text) == want


@pytest.mark.parametrize("text", ["", "a", "4-2", "1,1", "-3", "0-"])
def test_parse_seeds_refuses_nonsense(text):
    with pytest.raises(gankit.GankitError, match="--seeds"):
        parse_seeds(text)


@pytest.mark.parametrize("over,msg", [
    ({"model.cond": "concat", "model.num_classes": 10}, "unconditional"),
    ({"train.d_steps": 2}, "d_steps 1"),
    ({"optim.ema_beta": 0.99}, "G_ema"),
    ({"loss.gp_weight": 1.0}, "gp_weight"),
    ({"model.d_dropout": 0.2}, "dropout"),
    ({"train.precision": "bf16"}, "fp32"),
])
def test_options_an_ensemble_cannot_batch_are_refused(over, msg):
    with pytest.raises(gankit.GankitError, match=msg):
        check_members(seed_configs(cfg("gan-ring8").with_overrides(over), [0, 1]))


def test_members_must_share_everything_but_seed_and_data(tmp_path):
    a = cfg("gan-ring8", **TINY_TOY)
    check_members([a, a.with_overrides({"data.name": "grid25", "train.seed": 4})])
    with pytest.raises(gankit.GankitError, match="share every setting"):
        check_members([a, a.with_overrides({"optim.g_lr": 1e-3})])
    with pytest.raises(gankit.GankitError, match="one shape and size"):
        Ensemble([a, a.with_overrides({"data.size": 1600})], [tmp_path / "x", tmp_path / "y"], log=quiet)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


def test_cli_seeds_trains_members_and_ctrl_c_then_resume_finishes_them(tmp_path):
    out = tmp_path / "sweep"
    over = ["--model.g_hidden", "64,64", "--model.d_hidden", "32,32", "--data.size", "20000"]
    p = _cli("train", "--preset", "gan-ring8", "--seeds", "0-1", "--epochs", "400", "--device", "cpu",
             "--no-progress", "--out", str(out), *over)
    log = out / "seed1" / "log.csv"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "SIGINT received" in err
    steps = [torch.load(out / f"seed{k}" / "checkpoints" / "last.pt", weights_only=True)["step"] for k in (0, 1)]
    assert steps[0] == steps[1] > 0
    assert json.loads((out / "ensemble.json").read_text())["members"] == ["seed0", "seed1"]
    p = _cli("train", "--resume", str(out), "--epochs", "2", "--no-progress")
    out_text, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    for k in (0, 1):
        g = gankit.load(out / f"seed{k}")
        assert g.step == 2 * 200 and g.config.train.seed == k and g.config.data.seed == k
    assert "done: 2 runs (seeds 0, 1)" in out_text


def test_cli_seeds_with_an_unbatchable_option_fails_in_one_line(tmp_path):
    p = _cli("train", "--preset", "seed", "--dataset", "digits", "--seeds", "0-1", "--model.d_dropout", "0.3",
             "--out", str(tmp_path / "x"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert err.strip().count("\n") == 0 and "dropout" in err
    assert not (tmp_path / "x").exists()


def test_a_crash_loses_at_most_the_training_since_the_last_timed_save(tmp_path, monkeypatch):
    c = cfg("pacgan-ring8", **TINY_TOY, **{"train.epochs": 3})
    outs = [tmp_path / "c0", tmp_path / "c1"]
    ens = Ensemble(seed_configs(c, [0, 1]), outs, log=quiet)
    ens.save_every_s = 0.0  # save at every epoch end
    real_step = ens._step

    def crash_in_epoch_3():
        if ens.step == 2 * ens.spe + 1:
            raise RuntimeError("simulated crash")
        real_step()
    monkeypatch.setattr(ens, "_step", crash_in_epoch_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ens.fit()
    for k, out in enumerate(outs):
        state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
        assert state["step"] == 2 * ens.spe  # the last epoch end
    resumed = Ensemble(seed_configs(c, [0, 1]), outs, resume=True, log=quiet)
    assert resumed.step == 2 * ens.spe and resumed.fit()[0].step == 3 * ens.spe


def assert_identical_members(a, b):
    """Every member's weights and buffers equal bit for bit in ensembles a and b."""
    for net in ("G", "D"):
        for k in range(a.K):
            sa, sb = getattr(a, net).member_state(k), getattr(b, net).member_state(k)
            for key in sa:
                assert torch.equal(sa[key], sb[key]), f"{net}[{k}].{key}"


def _two_methods(tmp_path, tag, over):
    """A gan-* and a pacgan-* ensemble of 2 seeds each: different shapes, same steps per epoch and length."""
    size = {"gan-ring8": 800, "pacgan-grid25": 3200}  # batches of 100 and 400 points: 8 steps per epoch each
    return [Ensemble(seed_configs(cfg(p, **{**TINY_TOY, "data.size": size[p], **over}), [0, 1]),
                     [tmp_path / f"{tag}{p}{k}" for k in range(2)], log=quiet)
            for p in ("gan-ring8", "pacgan-grid25")]


def test_ensembles_trained_together_equal_each_trained_alone(tmp_path):
    over = {"train.epochs": 2, "train.checkpoint_every": 1}
    alone = _two_methods(tmp_path, "a", over)
    for e in alone:
        e.fit()
    together = _two_methods(tmp_path, "t", over)
    results = fit_together(together)
    assert [len(r) for r in results] == [2, 2] and all(r.step == 2 * together[0].spe for rs in results for r in rs)
    for a, t in zip(alone, together):
        assert_identical_members(a, t)
        for m_a, m_t in zip(a.members, t.members):
            assert (m_a.run_dir / "log.csv").read_text() == (m_t.run_dir / "log.csv").read_text()
            assert (m_t.run_dir / "checkpoints" / "epoch_0001.pt").is_file()


def test_ensembles_of_different_lengths_are_refused_together(tmp_path):
    a, b = _two_methods(tmp_path, "x", {"train.epochs": 1})
    b.total_steps += 1
    with pytest.raises(gankit.GankitError, match="same steps per epoch, total steps and current step"):
        fit_together([a, b])


def test_ensembles_stopped_together_resume_together_to_the_uninterrupted_result(tmp_path, monkeypatch):
    over = {"train.epochs": 2}
    straight = _two_methods(tmp_path, "s", over)
    fit_together(straight)
    first = _two_methods(tmp_path, "p", over)
    stop_at = first[0].spe + 3  # mid-epoch
    real_step = first[1]._step

    def step_then_maybe_stop():  # the second ensemble asks; both must stop after the same step
        real_step()
        if first[1].step + 1 == stop_at:
            first[1].stop()
    monkeypatch.setattr(first[1], "_step", step_then_maybe_stop)
    results = fit_together(first)
    assert [rs[0].step for rs in results] == [stop_at, stop_at]
    resumed = [Ensemble([gankit.RunConfig.from_dict(json.loads((m.run_dir / "config.json").read_text()))
                         for m in e.members], [m.run_dir for m in e.members], resume=True, log=quiet) for e in first]
    assert [e.step for e in resumed] == [stop_at, stop_at]
    fit_together(resumed)
    for a, b in zip(straight, resumed):
        assert_identical_members(a, b)
