"""The adaptive thread count: only where results cannot change, and it follows the faster setting."""

import pytest
import torch

import gankit
from gankit.config import preset_config
from gankit.models import build_discriminator, build_generator
from gankit.train.threads import ThreadTuner, matmul_only


def test_only_matmul_models_are_tuned():
    seed = preset_config("seed").model
    assert matmul_only(build_generator(seed, (1, 8, 8)), build_discriminator(seed, (1, 8, 8)))
    dc = gankit.preset("dcgan-mnist").model
    assert not matmul_only(build_generator(dc, (1, 28, 28)), build_discriminator(dc, (1, 28, 28)))


def test_seed_results_do_not_depend_on_the_thread_count(tmp_path):
    """What makes tuning safe for the seed: 1 and 2 threads give bit-identical runs."""
    def run(threads, name):
        cfg = gankit.preset("seed").with_overrides({"data.name": "digits", "train.steps": 60, "train.threads": threads,
                                                    "train.progress": False, "train.sample_every": 0})
        return gankit.train(cfg, tmp_path / name, log=lambda *_: None).history
    before = torch.get_num_threads()
    try:
        assert run(1, "one") == run(2, "two") == run(0, "auto")
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("fast", [1, 2])
def test_tuner_settles_on_the_faster_setting(fast):
    """Simulated step times: the setting named ``fast`` takes 1 ms a step, the other 3 ms."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tuner = ThreadTuner(every=5)
        used = []  # the thread count each window ran with
        for _ in range(30):
            tuner.start()
            used.append(torch.get_num_threads())
            cost = 0.001 if used[-1] == fast else 0.003
            tuner.t0 -= cost * 10  # as if 10 steps had taken this long
            tuner.window_done(10)
        assert used[-20:].count(fast) >= 16  # only the occasional probe window leaves the faster setting
    finally:
        torch.set_num_threads(before)
