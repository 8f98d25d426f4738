"""CUDA-graph step (train.cuda_graphs): what can be checked without a GPU. The GPU half is tests/test_gpu.py."""
import pytest
import torch

import gankit
from gankit.training import options
from gankit.checkpoint import load_checkpoint
from gankit.training.loop import Trainer


def cfg(preset="seed", **kw):
    over = {"data.name": "digits", "train.steps": 12, "train.progress": False, "train.log_every": 4,
            "train.sample_every": 0, "train.checkpoint_every": 0}
    over.update(kw)
    return gankit.preset(preset).with_overrides(over)


def quiet(*_):
    pass


def test_cuda_graphs_on_cpu_is_refused_before_the_run_folder_is_made(tmp_path):
    with pytest.raises(gankit.GankitError, match="train.cuda_graphs needs a CUDA device"):
        gankit.train(cfg(**{"train.cuda_graphs": True}), tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("over,msg", [
    ({"train.precision": "fp16"}, "fp16"),
    ({"train.compile": True}, "train.compile"),
    ({"optim.lr_schedule": "linear"}, "lr_schedule constant"),
    ({"loss.augment": "translation"}, "loss.augment"),
    ({"loss.gp_weight": 10.0}, "loss.gp_weight"),
    ({"loss.instance_noise": 0.1}, "loss.instance_noise"),
])
def test_steps_a_graph_cannot_replay_are_refused(over, msg):
    c = cfg(**over)
    with pytest.raises(gankit.GankitError, match=msg):
        options.check("cuda_graphs", c, options.Context(device="cuda"))
    options.check("cuda_graphs", cfg(), options.Context(device="cuda"))  # the seed's step is capturable
    with pytest.raises(gankit.GankitError, match="torchrun"):
        options.check("cuda_graphs", cfg(), options.Context(device="cuda", distributed=True))


@pytest.mark.parametrize("preset,over", [
    ("seed", {}),
    ("seed", {"train.d_steps": 2}),
    ("cgan-mnist", {"model.g_channels": 4, "model.d_channels": 4, "train.batch_size": 16}),
    ("dcgan-mnist", {"model.g_channels": 4, "model.d_channels": 4, "train.batch_size": 16, "optim.ema_beta": 0.9}),
])
def test_inputs_drawn_ahead_give_the_eager_step_bit_for_bit(tmp_path, preset, over):
    """The graph step draws z and fake labels before the step (graphs.py); the same draws, passed in, must give
    exactly the eager step's parameters."""
    c = cfg(preset, **over)
    a = Trainer(c, tmp_path / "a", log=quiet)
    b = Trainer(c, tmp_path / "b", log=quiet)
    B, k = c.train.batch_size, c.train.d_steps
    for step in range(3):
        idx = [torch.arange(B) + (step * k + i) * B for i in range(k)]
        batches = [a.data.images[j] for j in idx]
        labels = [a.data.labels[j] for j in idx] if c.model.cond != "none" else None
        out_a = a.train_step(batches, labels)
        out_b = b.train_step(batches, labels, b.train_step.draw(k))
        assert torch.equal(out_a, out_b)
    for pa, pb in zip(list(a.G.parameters()) + list(a.D.parameters()),
                      list(b.G.parameters()) + list(b.D.parameters())):
        assert torch.equal(pa, pb)


def test_a_checkpoint_saved_capturable_resumes_on_cpu(tmp_path):
    tr = Trainer(cfg(), tmp_path / "r", log=quiet)
    tr.fit()
    state = load_checkpoint(tmp_path / "r")
    for opt in ("opt_G", "opt_D"):  # as a CUDA-graph run on a GPU saves it
        for g in state[opt]["param_groups"]:
            g["capturable"] = True
    torch.save(state, tmp_path / "r" / "checkpoints" / "last.pt")
    res = Trainer(cfg(**{"train.steps": 16}), tmp_path / "r", resume=True, log=quiet)
    assert all(not g["capturable"] for o in (res.opt_G, res.opt_D) for g in o.param_groups)
    assert res.fit().step == 16


def test_tf32_on_cpu_is_refused_before_the_run_folder_is_made(tmp_path):
    with pytest.raises(gankit.GankitError, match="train.tf32 needs a CUDA device"):
        gankit.train(cfg(**{"train.tf32": True}), tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()
