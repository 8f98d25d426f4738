"""scripts/quick_trials.py's pieces: every trial a valid config (the cluster trials quick-mnist's), and --cached
rewriting only its region of the doc from the JSON. (k-means and the cluster-share sampler: tests/data/
test_clusters.py.)"""
import json

import pytest


@pytest.fixture(scope="module")
def qt(load_script):
    return load_script("quick_trials")


def test_every_trial_is_a_valid_config_and_the_cluster_trials_self_condition(qt):
    """Each trial's overrides build on its family's base (a typo in a key fails here, not hours into a run); the
    cluster trials are quick-mnist's recipe with data.clusters, and the 30-cluster projection one is the preset as
    shipped."""
    from gankit.config import preset_config
    from gankit.models import check_model

    for fam in qt.FAMILIES.values():
        for name, (steps, over, what) in fam.trials.items():
            cfg = preset_config(fam.base).with_overrides({**fam.common, **over})
            check_model(cfg.model)
            assert steps > 0 and what, name
    for k in (5, 10, 20):
        cfg = preset_config("dcgan-mnist").with_overrides(qt.TRIALS[f"quick-mnist, {k} clusters, 18,000 steps"][1])
        assert (cfg.data.clusters, cfg.model.cond, cfg.model.num_classes) == (k, "concat", k)
    shipped = preset_config("dcgan-mnist").with_overrides({**qt.FAMILIES["quick"].common, **qt.TRIALS[
        "quick-mnist, 30 clusters, projection D, 18,000 steps"][1]})
    quick = preset_config("quick-mnist")
    assert (shipped.data, shipped.model, shipped.loss, shipped.optim) == (quick.data, quick.model, quick.loss,
                                                                          quick.optim)
    # the trials ran in bf16 on a CPU with bf16 instructions, where the preset's precision auto takes bf16
    assert (shipped.train.precision, quick.train.precision) == ("bf16", "auto")


def _cached_setup(tmp_path, doc_text: str, cache: str, name: str, steps: int, fd: float, kid: float, precision: float,
                  recall: float):
    """A doc and a one-trial record beside it, as --cached reads them; the doc's path."""
    doc = tmp_path / "ZOO.md"
    doc.write_text(doc_text)
    (tmp_path / "zoo").mkdir()
    rec = {"steps": steps, "fd": fd, "kid": kid, "precision": precision, "recall": recall, "classes_over_2pct": 10}
    (tmp_path / "zoo" / cache).write_text(json.dumps({name: rec}))
    return doc


def test_cached_rewrites_only_its_region(qt, tmp_path):
    doc = _cached_setup(tmp_path, f"# Zoo\n\nbefore\n\n{qt.START}\nstale\n{qt.END}\n\nafter\n", "quick_trials.json",
                        "base", 3000, 76.62, 10.6, 0.509, 0.609)
    assert qt.main(["--cached", "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Zoo\n\nbefore\n\n" + qt.START) and text.endswith(qt.END + "\n\nafter\n")
    assert "| base | 3,000 | 76.6 | 10.60 | 0.509 | 0.609 | 10 |" in text and "stale" not in text
    assert "| lr 1e-3 | not run yet |" in text
    with pytest.raises(SystemExit):
        qt.main(["--only", "no such trial", "--doc", str(doc)])


def test_the_seed_family_writes_its_own_region_and_record(qt, tmp_path):
    doc = _cached_setup(tmp_path, f"# Zoo\n\n{qt.START}\nquick table\n{qt.END}\n", "seed_trials.json", "R1 30", 18000,
                        102.7, 14.2, 0.718, 0.193)
    assert qt.main(["--family", "seed", "--cached", "--doc", str(doc)]) == 0
    text = doc.read_text()
    start, end = qt.markers(qt.FAMILIES["seed"])
    # the quick region is untouched; the seed region is appended under its own heading, after it
    assert text.startswith(f"# Zoo\n\n{qt.START}\nquick table\n{qt.END}\n")
    assert text.index(qt.END) < text.index("## Ending seed-plus's collapse") < text.index(start) < text.index(end)
    assert "`python scripts/quick_trials.py --family seed`" in text and "docs/zoo/seed_trials.json" in text
    assert "| R1 30 | 18,000 | 102.7 | 14.20 | 0.718 | 0.193 | 10 |" in text and "| seed | not run yet |" in text
    with pytest.raises(SystemExit):  # a quick-mnist trial is not a seed trial
        qt.main(["--family", "seed", "--only", "lr 1e-3", "--doc", str(doc)])


def test_every_seed_trial_keeps_the_seeds_layer_sizes(qt):
    """The seed-plus target is about the seed's networks: no trial may change a hidden layer or the architecture.
    The cluster trials (which showed that self-conditioning does not end the seed's collapse) add the cluster's
    one-hot to G's input and a projection to D, and nothing else; the shipped preset has none."""
    from gankit.config import preset_config

    sizes = ("model.arch", "model.z_dim", "model.g_hidden", "model.d_hidden")
    for name, (steps, over, _) in qt.SEED_TRIALS.items():
        assert not any(key in over for key in sizes), name
        if "data.clusters" in over:
            assert "clusters" in name and over["model.cond"] == "projection", name
        cfg = preset_config("seed").with_overrides(over)
        assert (cfg.model.arch, cfg.model.z_dim, cfg.model.g_hidden, cfg.model.d_hidden) == ("mlp", 100, (128,), (128,))
    shipped = qt.SEED_TRIALS["seed-plus"]  # the trial named seed-plus trains the preset as shipped
    plus = preset_config("seed-plus").with_overrides(shipped[1])
    assert plus == preset_config("seed-plus") and plus.data.clusters == 0
    # its steps are the preset's 180 epochs, 300 steps of 2 D batches (of 100) each on 60,000 images
    assert plus.train.d_steps == 2 and shipped[0] == plus.train.epochs * 60_000 // (100 * 2) == 54_000
