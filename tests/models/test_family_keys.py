"""Each model family declares the model.* keys it reads (issue #18): every declared key changes the built nets,
every other key set away from its default is refused in one line naming the family, and every preset passes."""
from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from gankit.config import PRESETS, ModelConfig, preset_config
from gankit.errors import GankitError
from gankit.models import (ARCHS, COMMON_KEYS, build_discriminator, build_generator, check_model, list_archs,
                           model_keys, unread_keys, without_unread)

SHAPE = (1, 16, 16)  # 16 = 4 · 2²: two conv layers, so dcgan's D normalises one of them
TINY = dict(z_dim=4, g_hidden=(8,), d_hidden=(8,), g_channels=4, d_channels=4, maxout_pieces=2)
# key -> (a valid non-default setting of it, what both it and the reference build need besides): every ModelConfig
# field but arch (which picks the family)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "z_dim": ({"z_dim": 3}, {}),
    "init": ({"init": "torch"}, {}),
    "cond": ({"cond": "projection", "num_classes": 2}, {}),
    "num_classes": ({"cond": "projection", "num_classes": 3}, {"cond": "projection", "num_classes": 2}),
    "pack": ({"pack": 2}, {}),
    "d_spectral_norm": ({"d_spectral_norm": True}, {}),
    "g_hidden": ({"g_hidden": (5,)}, {}),
    "d_hidden": ({"d_hidden": (5,)}, {}),
    "leaky_slope": ({"leaky_slope": 0.05}, {}),
    "g_norm": ({"g_norm": "layer"}, {}),
    "d_norm": ({"d_norm": "layer"}, {}),
    "d_dropout": ({"d_dropout": 0.5}, {}),
    "d_mbstd": ({"d_mbstd": 2}, {}),
    "g_channels": ({"g_channels": 2}, {}),
    "d_channels": ({"d_channels": 2}, {}),
    "g_layers": ({"g_layers": 1}, {}),
    "d_layers": ({"d_layers": 1}, {}),
    "maxout_pieces": ({"maxout_pieces": 3}, {}),
    "g_norm_slots": ({"g_norm_slots": 2}, {"g_norm": "batch"}),
    "bn_momentum": ({"bn_momentum": 0.5}, {"g_norm": "batch"}),
    "stage_channels": ({"stage_channels": (8,)}, {}),
    "stage_blocks": ({"stage_blocks": 2}, {}),
    "block_expansion": ({"block_expansion": 3}, {}),
    "group_channels": ({"group_channels": 8}, {}),
}
CASES = [(arch, key) for arch in list_archs() for key in VARIANTS]


def _cfg(arch: str, **kw) -> ModelConfig:
    return ModelConfig(arch=arch, **{**{k: v for k, v in TINY.items() if k in model_keys(arch)}, **kw})


def _fingerprint(cfg: ModelConfig) -> tuple[int, list[torch.Tensor]]:
    """(parameter count, G's and D's outputs on fixed inputs in train mode, then in eval mode): train mode shows
    dropout and batch statistics, eval mode after one training pass the running statistics."""
    torch.manual_seed(0)
    G, D = build_generator(cfg, SHAPE), build_discriminator(cfg, SHAPE)
    count = sum(p.numel() for net in (G, D) for p in net.parameters())
    g = torch.Generator().manual_seed(1)
    z, x = torch.randn(4, G.z_dim, generator=g), torch.rand(4, *SHAPE, generator=g) * 2 - 1
    labels = (torch.tensor([0, 1, 0, 1]),) if cfg.cond != "none" else ()
    outs = []
    for train in (True, False):
        G.train(train), D.train(train)
        torch.manual_seed(2)  # the same dropout masks
        with torch.no_grad():
            outs += [G(z, *labels), D(x, *labels)]
    return count, outs


def _same(a, b) -> bool:
    return a[0] == b[0] and all(u.shape == v.shape and torch.allclose(u, v) for u, v in zip(a[1], b[1]))


def test_variants_cover_every_model_key_and_families_declare_only_model_keys():
    names = {f.name for f in fields(ModelConfig)}
    assert set(VARIANTS) == names - {"arch"}
    assert COMMON_KEYS <= names and all(family.keys <= names for family in ARCHS.values())


@pytest.mark.parametrize("arch,key", [c for c in CASES if c[1] in model_keys(c[0])])
def test_a_declared_key_changes_the_nets(arch, key):
    setting, needs = VARIANTS[key]
    reference = _fingerprint(_cfg(arch, **needs))
    assert not _same(_fingerprint(_cfg(arch, **{**needs, **setting})), reference), \
        f"model.{key} is declared by the {arch} family but changes neither its parameters nor its outputs"


@pytest.mark.parametrize("arch,key", [c for c in CASES if c[1] not in model_keys(c[0])])
def test_an_undeclared_key_is_refused_in_one_line(arch, key):
    setting, needs = VARIANTS[key]
    needs = {k: v for k, v in needs.items() if k in model_keys(arch)}  # a prerequisite the family has no use for
    cfg = _cfg(arch, **{**needs, **setting})
    assert unread_keys(cfg) == [key]
    others = ", ".join(a for a in list_archs() if key in ARCHS[a].keys)
    match = rf"^model\.{key} \S+ has no effect on the {arch} family \(it reads .*\); .*: {others}$"
    for check in (check_model, lambda c: build_generator(c, SHAPE), lambda c: build_discriminator(c, SHAPE)):
        with pytest.raises(GankitError, match=match):
            check(cfg)
    assert _same(_fingerprint(without_unread(cfg)), _fingerprint(_cfg(arch, **needs)))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_sets_only_keys_its_family_reads(name):
    cfg = preset_config(name).model
    check_model(cfg)
    assert unread_keys(cfg) == [] and without_unread(cfg) == cfg


def test_bn_momentum_needs_a_batch_norm():
    with pytest.raises(GankitError, match=r"^model\.bn_momentum 0\.05 needs a batch norm"):
        check_model(_cfg("toy", bn_momentum=0.05))
    check_model(_cfg("toy", bn_momentum=0.05, d_norm="batch"))


@pytest.mark.parametrize("preset,key,value,family", [
    ("sngan-cifar10", "d_dropout", "0.5", "resnet"),  # the examples of issue #18
    ("sngan-cifar10", "leaky_slope", "0.1", "resnet"),
    ("dcgan-mnist", "g_hidden", "256", "dcgan"),
    ("dcgan-mnist", "maxout_pieces", "3", "dcgan"),
    ("dcgan-mnist", "bn_momentum", "0.05", "dcgan"),
    ("seed", "g_channels", "32", "mlp"),
])
def test_cli_refuses_a_key_the_family_ignores(preset, key, value, family, refused, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(["train", "--preset", preset, f"--model.{key}", value, "--dry-run"], tmp_path,
            rf"error: model\.{key} {value} has no effect on the {family} family")


def test_readme_table_lists_each_familys_keys():
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for arch in list_archs():
        row = re.search(rf"^\| `{arch}` \| (.+) \|$", readme, re.M)
        assert row, f"README lists no keys for model.arch {arch}"
        assert set(re.findall(r"`(\w+)`", row.group(1))) == ARCHS[arch].keys, arch


def test_a_checkpoint_from_before_the_refusal_still_loads(tmp_path):
    """A run saved with a key its family ignored (allowed before issue #18) samples as it did: the key never
    changed its nets."""
    from gankit.api import LoadedGenerator
    from gankit.config import RunConfig

    cfg = RunConfig().with_overrides({"model.z_dim": 4, "model.g_hidden": (8,), "model.d_hidden": (8,)})
    G = build_generator(cfg.model, (1, 8, 8))
    saved = cfg.to_dict()
    saved["model"]["g_channels"] = 32  # an MLP never read it
    loaded = LoadedGenerator({"config": saved, "img_shape": [1, 8, 8], "G": G.state_dict()}, tmp_path / "old.pt")
    assert loaded.config.model.g_channels == 32
    z = torch.randn(3, 4)
    torch.testing.assert_close(loaded.G(z), G.eval()(z))
