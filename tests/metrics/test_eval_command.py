"""The CLI: 'gankit eval', 'gankit evaluator', 'gankit train --eval-every', and the --help examples."""
from __future__ import annotations

import json
import shlex

import pytest

from gankit.cli import main
from gankit.metrics import command as eval_command
from gankit.metrics import evaluator_command


def test_eval_writes_a_report_with_counts_floor_and_checksum(digits_run, tmp_path, capsys, digits_evaluator):
    out = tmp_path / "eval.json"
    rc = main(["eval", str(digits_run), "--metrics", "fd,kid,is,pr,dc,classes", "--n", "300", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fd300" in text and "pr300_k3" in text and "N_fake 300" in text and "real-vs-real floor" in text
    assert digits_evaluator.card["sha256"][:16] in text
    report = json.loads(out.read_text())
    fd = report["metrics"]["fd300"]
    assert fd["n_fake"] == 300 and fd["n_real"] == 297 and fd["floor"]["n_fake"] == 300
    assert fd["fd"] > fd["floor"]["fd"]  # 20 steps of training are far from the real-vs-real floor
    assert report["evaluator"]["test_accuracy"] == digits_evaluator.card["test_accuracy"]
    assert report["run"]["step"] == 20


def test_eval_errors_are_one_line(digits_run, capsys):
    assert main(["eval", str(digits_run), "--metrics", "fid"]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'fid'" in err and err.count("\n") == 1
    assert main(["eval", str(digits_run), "--metrics", "fd", "--n", "1"]) == 2
    assert "--n must be at least 2" in capsys.readouterr().err


def test_inception_metrics_say_why_they_cannot_run(digits_run, capsys):
    import importlib.util

    if importlib.util.find_spec("torch_fidelity") is not None:
        pytest.skip("torch-fidelity is installed here")
    assert main(["eval", str(digits_run), "--metrics", "ifid", "--n", "100"]) == 2
    err = capsys.readouterr().err
    assert "torch-fidelity" in err and "not installed" in err and err.count("\n") == 1


def test_evaluator_command_train_show_list(isolated_data_env, digits_evaluator, cached_digits_evaluator, capsys):
    assert main(["evaluator", "show", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "origin         pinned" in out and digits_evaluator.card["sha256"] in out
    assert main(["evaluator", "show", "--dataset", "digits", "--evaluator", "cache"]) == 0
    out = capsys.readouterr().out
    assert "origin         user-trained" in out and cached_digits_evaluator.card["sha256"] in out
    assert main(["evaluator", "list"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist    pinned" in out and "digits           user-trained" in out
    assert main(["evaluator", "train", "--dataset", "digits"]) == 0  # cached: prints the card, no training
    out = capsys.readouterr().out
    assert "test accuracy" in out and "pinned check" in out  # whether it reproduces the pinned checksum
    assert main(["evaluator", "train", "--dataset", "digits", "--evaluator", "cache"]) == 2
    assert "does not take it" in capsys.readouterr().err
    # every option an action would not read is refused in one line, not ignored
    for args, msg in ((["list", "--epochs", "3"], "--epochs applies to 'gankit evaluator train' only; 'gankit "
                                                  "evaluator list' does not take it"),
                      (["show", "--dataset", "digits", "--force"], "--force applies to 'gankit evaluator train' only"),
                      (["show", "--dataset", "digits", "--seed", "0"], "--seed applies to 'gankit evaluator train'"),
                      (["train", "--dataset", "digits", "--json"], "--json applies to 'gankit evaluator show' only"),
                      (["list", "--dataset", "digits"], "--dataset applies to 'gankit evaluator train' and 'gankit "
                                                        "evaluator show' only")):
        assert main(["evaluator", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"gankit: error: {msg}" or (err.startswith(f"gankit: error: {msg}") and "\n" not in err)
    assert main(["evaluator", "show"]) == 2
    assert "needs --dataset" in capsys.readouterr().err


def test_train_eval_every_appends_to_metrics_jsonl(tmp_path, digits_evaluator, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "digits", "--epochs", "2", "--no-progress", "--out", str(out),
               "--eval-every", "1", "--eval-metrics", "fd300,classes300", "--train.sample_every", "0"])
    assert rc == 0
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[0]["metrics"]["fd300"]["n_fake"] == 300 and lines[0]["metrics"]["fd300"]["floor"]["fd"] > 0
    assert lines[1]["evaluator"] == digits_evaluator.card["sha256"]
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r2"), "--eval-every", "1",
                 "--eval-metrics", "nope"]) == 2
    assert "unknown metric 'nope" in capsys.readouterr().err
    # metrics with nothing to score them would be ignored: refused in one line, before any folder is made
    for extra in ([], ["--dry-run"], ["--seeds", "0-1"]):
        assert main(["train", "--dataset", "digits", "--steps", "2", "--out", str(tmp_path / "r3"), "--eval-metrics",
                     "fd300", *extra]) == 2
        assert capsys.readouterr().err.strip() == ("gankit: error: --eval-metrics names what --eval-every K scores "
                                                   "every K epochs; add --eval-every K")
        assert not (tmp_path / "r3").exists()


def test_resuming_from_an_earlier_checkpoint_drops_the_later_evaluations(tmp_path, digits_evaluator):
    """metrics.jsonl follows the run back to the checkpoint it resumes from, as log.csv does: epoch 2's record of
    the abandoned timeline goes, the rerun epoch 2 writes its own."""
    out = tmp_path / "run"
    common = ["--no-progress", "--eval-every", "1", "--eval-metrics", "classes300", "--train.sample_every", "0"]
    assert main(["train", "--dataset", "digits", "--epochs", "3", "--out", str(out), "--train.checkpoint_every", "1",
                 *common]) == 0
    first = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in first] == [1, 2, 3]
    assert main(["train", "--resume", str(out / "checkpoints" / "epoch_0001.pt"), "--out", str(out),
                 "--epochs", "2", *common]) == 0
    again = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in again] == [1, 2] and again[0] == first[0]


@pytest.mark.parametrize("module", [eval_command, evaluator_command])
def test_help_examples_parse(module):
    from gankit.cli import _parser

    parser = _parser()
    for line in module.EXAMPLES.splitlines():
        line = line.strip()
        if line.startswith("gankit "):
            argv = shlex.split(line.split("#")[0])[1:]
            args, extra = parser.parse_known_args(argv)
            assert args.command == module.NAME and extra == []


def test_eval_of_a_seeds_folder_scores_each_member_and_their_mean(tmp_path, capsys):
    """`gankit eval` on a `train --seeds` folder: every member as `gankit eval MEMBER` scores it, then the mean and
    standard error over the members of each number."""
    import math

    out = tmp_path / "ring"
    assert main(["train", "--preset", "gan-ring8", "--seeds", "0-2", "--steps", "30", "--device", "cpu",
                     "--data.size", "3000", "--model.g_hidden", "16,16", "--model.d_hidden", "16",
                     "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json", str(tmp_path / "all.json")]) == 0
    text = capsys.readouterr().out
    both = json.loads((tmp_path / "all.json").read_text())
    assert list(both["members"]) == ["seed0", "seed1", "seed2"]
    single = []
    for k in range(3):
        assert main(["eval", str(out / f"seed{k}"), "--json", str(tmp_path / f"{k}.json")]) == 0
        single.append(json.loads((tmp_path / f"{k}.json").read_text())["metrics"]["modes2d"])
        assert both["members"][f"seed{k}"]["metrics"]["modes2d"] == single[-1]
    hq = [s["high_quality"] for s in single]
    mean = sum(hq) / 3
    se = math.sqrt(sum((h - mean) ** 2 for h in hq) / 2 / 3)
    got = both["summary"]["modes2d"]["high_quality"]
    assert got["n"] == 3 and math.isclose(got["mean"], mean) and math.isclose(got["se"], se)
    assert "over 3 seeds (mean ± standard error):" in text
