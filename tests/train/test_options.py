"""The one table of which training path takes which options (training/options.py)."""
from pathlib import Path

import pytest

import gankit
from gankit.config import preset_config
from gankit.training import options
from gankit.training.options import Context

ROOT = Path(__file__).resolve().parents[2]
CPU, CUDA = Context(device="cpu", local_batch=64), Context(device="cuda", local_batch=64)

# (path, overrides, context): each row must make its path refuse; together they must reach every rule
TRIGGERS = [
    ("run", {"loss.augment": "color"}, Context(images=False, local_batch=64)),
    ("run", {"data.clusters": 10}, CPU),
    ("run", {"data.clusters": 10, "model.cond": "concat", "model.num_classes": 12}, CPU),
    ("run", {"model.cond": "concat", "model.num_classes": 10}, CPU),
    ("run", {"model.cond": "concat", "model.num_classes": 2}, Context(classes=10, local_batch=64)),
    ("run", {"train.batch_size": 63, "model.pack": 2}, CPU),
    ("run", {"model.g_norm_slots": 3}, CPU),
    ("run", {"model.arch": "dcgan", "model.d_norm": "batch", "model.pack": 2, "train.batch_size": 2},
     Context(local_batch=2)),
    ("run", {"model.arch": "dcgan", "model.g_norm": "batch", "train.batch_size": 1}, Context(local_batch=1)),
    ("run", {"model.d_mbstd": 5}, CPU),
    ("run", {"train.updates": "simultaneous", "train.d_steps": 2}, CPU),
    ("run", {"train.precision": "fp16"}, CPU),
    ("run", {"train.precision": "fp16", "loss.r1_gamma": 1.0}, CUDA),
    ("run", {"train.tf32": True}, CPU),
    ("run", {"train.sync_bn": True}, Context(distributed=True, local_batch=64)),
    ("fused", {"train.fused_step": False}, CPU),
    ("fused", {"model.pack": 2}, CPU),
    ("fused", {"loss.instance_noise": 0.1}, CPU),
    ("fused", {"loss.r2_gamma": 1.0}, CPU),
    ("fused", {"optim.ema_beta": 0.9}, CPU),
    ("fused", {"optim.lr_schedule": "linear"}, CPU),
    ("fused", {"train.updates": "simultaneous"}, CPU),
    ("fused", {"model.arch": "dcgan"}, CPU),
    ("fused", {"loss.name": "hinge", "loss.real_target": 1.0}, CPU),
    ("fused", {"train.precision": "bf16"}, CPU),
    ("fused", {"train.precision": "auto"}, Context(device="cpu", precision="bf16", local_batch=64)),
    ("fused", {"train.compile": True}, CPU),
    ("fused", {}, Context(distributed=True, local_batch=64)),
    ("fused", {}, Context(mlp_layers=False, local_batch=64)),
    ("cuda_graphs", {}, CPU),
    ("cuda_graphs", {}, Context(device="cuda", distributed=True)),
    ("cuda_graphs", {"train.precision": "fp16"}, CUDA),
    ("cuda_graphs", {"train.compile": True}, CUDA),
    ("cuda_graphs", {"optim.lr_schedule": "linear"}, CUDA),
    ("cuda_graphs", {"loss.augment": "color"}, CUDA),
    ("cuda_graphs", {"loss.gp_weight": 1.0}, CUDA),
    ("cuda_graphs", {"loss.instance_noise": 0.1}, CUDA),
    ("seeds", {}, Context(distributed=True)),
    ("seeds", {"model.cond": "concat", "model.num_classes": 10}, CPU),
    ("seeds", {"train.d_steps": 2}, CPU),
    ("seeds", {"train.precision": "bf16"}, CPU),
    ("seeds", {"train.precision": "auto"}, Context(device="cpu", precision="bf16", local_batch=64)),
    ("seeds", {"train.compile": True}, CPU),
    ("seeds", {"optim.ema_beta": 0.9}, CPU),
    ("seeds", {"optim.lr_schedule": "linear"}, CPU),
    ("seeds", {"loss.r2_gamma": 1.0}, CPU),
    ("seeds", {"loss.instance_noise": 0.1}, CPU),
    ("seeds", {"model.d_dropout": 0.5}, CPU),
    ("seeds", {"model.d_mbstd": 4}, CPU),
    ("seeds", {"model.d_spectral_norm": True}, CPU),
    ("seeds", {"train.adaptive_threads": True}, CPU),
    ("adaptive_threads", {}, CUDA),
    ("adaptive_threads", {}, Context(distributed=True)),
    ("adaptive_threads", {}, Context(matmul_only=False)),
]


def _fired(path, cfg, ctx):
    return [r for r in options.RULES if r.path == path and r.when(cfg, ctx)]


@pytest.mark.parametrize("path,over,ctx", TRIGGERS)
def test_each_trigger_is_refused_in_one_line_by_its_first_rule(path, over, ctx):
    cfg = preset_config("seed").with_overrides(over)
    fired = _fired(path, cfg, ctx)
    assert fired, (path, over)
    why = options.why_not(path, cfg, ctx)
    assert why is not None and "\n" not in why and "{" not in why
    assert why.startswith(options.PATHS[path]) and fired[0].why.format(c=cfg, x=ctx) in why
    if path != "fused":
        with pytest.raises(gankit.GankitError, match="^" + why[:40].replace("(", r"\(").replace(")", r"\)")):
            options.check(path, cfg, ctx)


def test_the_triggers_reach_every_rule_and_the_seed_passes_every_path():
    reached = {id(r) for path, over, ctx in TRIGGERS for r in _fired(path, preset_config("seed").with_overrides(over),
                                                                         ctx)}
    missing = [f"{r.path}: {r.why}" for r in options.RULES if id(r) not in reached]
    assert not missing
    seed = preset_config("seed")
    for path in ("run", "fused", "seeds", "adaptive_threads"):
        assert options.why_not(path, seed, CPU) is None, path


def test_docs_options_is_the_table():
    assert (ROOT / "docs" / "OPTIONS.md").read_text() == options.markdown() + "\n"


def test_a_refused_option_stops_a_real_run_before_its_folder_exists(tmp_path):
    cfg = preset_config("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.tf32": True,
                                                "train.progress": False})
    with pytest.raises(gankit.GankitError, match="^train.tf32 needs a CUDA device"):
        gankit.train(cfg, out=tmp_path / "r", log=lambda *_: None)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("over,match", [
    ({"loss.augment": "rotate"}, "unknown augmentation 'rotate'"),
    ({"loss.name": "hinge"}, "has no targets"),
    ({"model.pack": 3}, "not a multiple of model.pack 3"),
])
def test_config_refusals_leave_no_run_folder(tmp_path, over, match):
    """Every refusal of the config comes before the run folder is made (gankit's bad-input promise)."""
    cfg = preset_config("seed").with_overrides({"data.name": "digits", "train.steps": 2, "train.progress": False,
                                                **over})
    with pytest.raises(gankit.GankitError, match=match):
        gankit.train(cfg, out=tmp_path / "new", log=lambda *_: None)
    assert not (tmp_path / "new").exists()
