"""gankit.train_seeds (api.py): the Python side of `gankit train --seeds`, writing the same --seeds folder
(checkpoint.seed_run_dirs / write_seed_members: OUT/ensemble.json and one run folder OUT/seedS per seed)."""
import json
from pathlib import Path

import pytest
import torch

import gankit
from gankit import cli
from gankit.checkpoint import seed_members

# A tiny gan-ring8: 400 points, batch 100, so 4 steps per epoch; ~1 s per member-run on one CPU thread
TINY = {"model.g_hidden": (16, 16), "model.d_hidden": (8, 8), "model.maxout_pieces": 3, "data.size": 400}
FLAGS = ["--model.g_hidden", "16,16", "--model.d_hidden", "8,8", "--model.maxout_pieces", "3", "--data.size", "400"]


def quiet(*_):
    pass


def tiny(steps: int, **over) -> gankit.RunConfig:
    return gankit.preset("gan-ring8").with_overrides({**TINY, "train.steps": steps, "train.progress": False,
                                                      "train.device": "cpu", **over})


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def weights(run_dir: Path) -> dict:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return {k: state[k] for k in ("config", "step", "G", "D", "opt_G", "opt_D")}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa["config"] == wb["config"] and wa["step"] == wb["step"]
    for net in ("G", "D"):
        assert wa[net].keys() == wb[net].keys()
        for name in wa[net]:
            assert torch.equal(wa[net][name], wb[net][name]), (a, net, name)  # bit for bit
    for opt in ("opt_G", "opt_D"):
        sa, sb = wa[opt]["state"], wb[opt]["state"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])


def test_the_api_writes_the_folder_gankit_train_seeds_writes(tmp_path, capsys):
    """The same --seeds folder from the CLI and from Python: ensemble.json, the files of each member, and every
    member's weights and Adam state, bit for bit."""
    by_cli, by_api = tmp_path / "cli", tmp_path / "api"
    assert cli.main(["train", "--preset", "gan-ring8", "--seeds", "0-1", "--steps", "6", "--device", "cpu",
                     "--no-progress", "--out", str(by_cli), *FLAGS]) == 0
    assert "done: 2 runs (seeds 0, 1), 6 steps each" in capsys.readouterr().out
    results = gankit.train_seeds(tiny(6), "0-1", by_api, log=quiet)
    assert [(r.run_dir, r.step, r.config.train.seed, r.config.data.seed) for r in results] == [
        (by_api / "seed0", 6, 0, 0), (by_api / "seed1", 6, 1, 1)]
    assert (by_api / "ensemble.json").read_text() == (by_cli / "ensemble.json").read_text() \
        == '{"members": ["seed0", "seed1"], "seeds": [0, 1]}\n'
    assert files(by_api) == files(by_cli)
    for member in ("seed0", "seed1"):
        assert_same_weights(by_api / member, by_cli / member)
    # and what reads a --seeds folder reads the API's: seed_members, gankit eval (every member, then the mean)
    assert seed_members(by_api) == [by_api / "seed0", by_api / "seed1"]
    assert cli.main(["eval", str(by_api), "--json", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert list(report["members"]) == ["seed0", "seed1"] and report["summary"]["modes2d"]["modes"]["n"] == 2


def test_resume_through_the_api_continues_exactly(tmp_path):
    """2 steps, then resume=True to 6 (mid-epoch, in place): the weights of one uninterrupted 6-step call."""
    gankit.train_seeds(tiny(2), [3, 5], tmp_path / "split", log=quiet)
    results = gankit.train_seeds(tiny(6), out=tmp_path / "split", resume=True, log=quiet)
    assert [r.step for r in results] == [6, 6]
    gankit.train_seeds(tiny(6), [3, 5], tmp_path / "whole", log=quiet)
    for member in ("seed3", "seed5"):
        assert_same_weights(tmp_path / "split" / member, tmp_path / "whole" / member)
    # config None: each member's checkpoint config, already at its end; the seeds must be the folder's own
    assert [r.step for r in gankit.train_seeds(out=tmp_path / "split", resume=True, log=quiet)] == [6, 6]
    with pytest.raises(gankit.GankitError, match=r"holds the runs of seeds 3,5, which resume=True continues; "
                                                 r"drop seeds$"):
        gankit.train_seeds(seeds="0-1", out=tmp_path / "split", resume=True, log=quiet)


def test_one_after_another_is_single_runs_in_the_same_folders(tmp_path):
    """together=False: the same --seeds folder, each member the single run of its seed (gankit.train), and any
    option, e.g. dropout, that an ensemble refuses."""
    cfg = tiny(4, **{"model.d_dropout": 0.2})
    with pytest.raises(gankit.GankitError, match=r"dropout.*; together=False trains them one after another$"):
        gankit.train_seeds(cfg, "0-1", tmp_path / "seq", log=quiet)
    assert not (tmp_path / "seq").exists()
    results = gankit.train_seeds(cfg, "0-1", tmp_path / "seq", together=False, log=quiet)
    assert [r.step for r in results] == [4, 4]
    assert seed_members(tmp_path / "seq") == [tmp_path / "seq" / "seed0", tmp_path / "seq" / "seed1"]
    gankit.train(cfg.with_overrides({"train.seed": 1, "data.seed": 1}), tmp_path / "single", log=quiet)
    assert_same_weights(tmp_path / "seq" / "seed1", tmp_path / "single")


def test_the_cli_trains_seeds_one_after_another_where_a_batched_run_is_refused(tmp_path, capsys):
    """gankit train --seeds of a config an ensemble refuses (D dropout) names --one-after-another in its one-line
    refusal; with it the CLI writes what together=False writes (each member its seed's single run, bit for bit),
    and --resume of that folder continues one after another, or is refused with the same hint without the flag."""
    seq = ["train", "--preset", "gan-ring8", "--seeds", "0-1", "--device", "cpu", "--no-progress",
           "--model.d_dropout", "0.2", *FLAGS]
    assert cli.main([*seq, "--steps", "4", "--out", str(tmp_path / "batched")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.endswith("; --one-after-another trains them one after another") and "\n" not in err
    assert not (tmp_path / "batched").exists()
    assert cli.main([*seq, "--steps", "4", "--one-after-another", "--out", str(tmp_path / "cli")]) == 0
    assert "done: 2 runs (seeds 0, 1), 4 steps each (one after another)" in capsys.readouterr().out
    gankit.train_seeds(tiny(4, **{"model.d_dropout": 0.2}), "0-1", tmp_path / "api", together=False, log=quiet)
    for member in ("seed0", "seed1"):
        assert_same_weights(tmp_path / "cli" / member, tmp_path / "api" / member)
    assert cli.main(["train", "--resume", str(tmp_path / "cli"), "--steps", "8"]) != 0
    assert capsys.readouterr().err.strip().endswith("; --one-after-another trains them one after another")
    assert cli.main(["train", "--resume", str(tmp_path / "cli"), "--steps", "8", "--one-after-another"]) == 0
    assert [weights(tmp_path / "cli" / m)["step"] for m in ("seed0", "seed1")] == [8, 8]
    assert cli.main(["train", "--preset", "gan-ring8", "--one-after-another", "--out", str(tmp_path / "x")]) != 0
    assert capsys.readouterr().err.strip() == ("gankit: error: --one-after-another trains the runs of --seeds; add "
                                               "--seeds LIST (or --resume a --seeds folder)")


@pytest.mark.parametrize("seeds,msg", [
    ("0-x", r"^seeds='0-x': expected seeds like 0-4 or 0,1,2 \(non-negative integers\)$"),
    ("0,0", r"^seeds='0,0': expected distinct non-negative seeds"),
    ([1, -1], r"^seeds=\[1, -1\]: expected distinct non-negative seeds"),
    (5, r"^seeds=5: expected seeds like '0-4', '0,1,2' or a list of ints$"),
    ("0-999", r"^seeds='0-999': at most 256 runs train together$"),
])
def test_bad_seeds_fail_in_one_line_before_any_folder(tmp_path, seeds, msg):
    with pytest.raises(gankit.GankitError, match=msg) as e:
        gankit.train_seeds(tiny(1), seeds, tmp_path / "x", log=quiet)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_resume_of_a_folder_that_is_not_a_seeds_folder_fails_in_one_line(tmp_path):
    gankit.train(tiny(1), tmp_path / "one", log=quiet)
    with pytest.raises(gankit.GankitError, match=r"one/ensemble\.json: unreadable; resume each member folder alone "
                                                 r"with gankit\.train\(out='.*/one/MEMBER', resume=True\)$"):
        gankit.train_seeds(out=tmp_path / "one", resume=True, log=quiet)


def test_one_after_another_shares_the_time_limit_and_resume_starts_the_members_not_begun(tmp_path, monkeypatch):
    """together=False under train.time_limit: the call's budget, not each member's; a stop leaves later members
    not begun, and resume=True finishes the begun one and starts the others (each its seed's single run)."""
    import itertools

    from gankit.training import budget

    ticks = itertools.count()  # the clock the loops read advances one second per read
    monkeypatch.setattr(budget, "clock", lambda: float(next(ticks)))
    lines = []
    out = tmp_path / "seq"
    results = gankit.train_seeds(tiny(8, **{"train.time_limit": 3}), "0-2", out, together=False, log=lines.append)
    assert len(results) == 1 and results[0].stopped_by_time and 0 < results[0].step < 8
    assert not (out / "seed1").exists() and seed_members(out) == [out / f"seed{k}" for k in range(3)]
    assert lines[-1] == f"{out}: stopped in seed 0; continue with gankit.train_seeds(out='{out}', resume=True, " \
                        f"together=False)"
    with pytest.raises(gankit.GankitError, match=r"seed1 has no checkpoint yet, unlike the other members: continue "
                                                 r"with gankit\.train_seeds\(out=.*, together=False\), which starts"):
        gankit.train_seeds(out=out, resume=True, log=quiet)
    results = gankit.train_seeds(out=out, resume=True, together=False, log=quiet)
    assert [(r.step, r.config.train.seed, r.config.train.time_limit) for r in results] == [
        (8, 0, None), (8, 1, None), (8, 2, None)]
    gankit.train(tiny(8, **{"train.seed": 2, "data.seed": 2}), tmp_path / "single", log=quiet)
    assert_same_weights(out / "seed2", tmp_path / "single")
