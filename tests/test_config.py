"""Config: typed overrides, unknown keys rejected, round trips."""
import json

import pytest

from gankit.config import RunConfig, all_keys, preset_config
from gankit.errors import GankitError


def test_seed_preset_holds_the_tutorial_numbers():
    c = preset_config("seed")
    assert (c.model.z_dim, c.model.g_hidden, c.model.d_hidden) == (100, (128,), (128,))
    assert c.model.leaky_slope == 0.2 and c.model.init == "glorot_uniform"
    assert (c.loss.name, c.loss.real_target, c.loss.fake_target) == ("nonsaturating", 0.9, 0.0)
    assert (c.optim.g_lr, c.optim.d_lr, c.optim.beta1, c.optim.beta2, c.optim.eps) == (1e-3, 1e-3, 0.9, 0.999, 1e-8)
    assert c.train.batch_size == 100 and c.train.d_steps == 1


def test_overrides_are_parsed_by_type():
    c = RunConfig().with_overrides({"train.batch_size": "64", "optim.g_lr": "2e-4", "model.g_hidden": "256,512",
                                    "train.steps": "none", "train.progress": "false", "data.dir": "/x"})
    assert c.train.batch_size == 64 and c.optim.g_lr == 2e-4 and c.model.g_hidden == (256, 512)
    assert c.train.steps is None and c.train.progress is False and c.data.dir == "/x"


@pytest.mark.parametrize("key,value,msg", [
    ("train.batchsize", "3", "unknown config key 'train.batchsize'"),
    ("nope", "3", "unknown config key 'nope'"),
    ("train", "3", "is a section"),
    ("train.batch_size", "abc", "expects int, got 'abc'"),
    ("train.batch_size", "-5", "train.batch_size must be positive"),
    ("optim.g_lr", "0", r"optim.g_lr must be > 0"),
    ("optim.d_lr", "nan", "expects float"),
    ("model.g_hidden", "128,x", "expects int"),
    ("train.progress", "maybe", "expects bool"),
    ("loss.real_target", "1.5", r"loss.real_target must be in \(0, 1\]"),
])
def test_bad_overrides_give_one_line_errors(key, value, msg):
    with pytest.raises(GankitError, match=msg) as e:
        RunConfig().with_overrides({key: value})
    assert "\n" not in str(e.value)


def test_dict_round_trip_and_unknown_keys_in_files():
    c = RunConfig().with_overrides({"model.g_hidden": "64,32", "train.seed": "7"})
    d = json.loads(c.to_json())
    assert RunConfig.from_dict(d) == c
    d["train"]["lr"] = 1
    with pytest.raises(GankitError, match="unknown config key 'train.lr'"):
        RunConfig.from_dict(d)


def test_every_key_is_settable_from_its_own_value():
    c = RunConfig()
    flat = {}
    for key in all_keys():
        obj = c
        for part in key.split("."):
            obj = getattr(obj, part)
        flat[key] = obj
    assert RunConfig().with_overrides(flat) == c


def test_unknown_preset_suggests_the_closest_or_lists_choices():
    with pytest.raises(GankitError, match=r"unknown preset 'sed'; did you mean 'seed'\?$"):
        preset_config("sed")
    with pytest.raises(GankitError, match="unknown preset 'xyz'; choose one of: .*seed"):
        preset_config("xyz")
