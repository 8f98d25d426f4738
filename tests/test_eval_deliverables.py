"""scripts/eval_deliverables.py: every kept checkpoint scored by gankit.metrics.score_run, against one floor."""
from gankit.config import DataConfig


def test_score_is_score_run_on_every_epoch_checkpoint(tmp_path, load_script):
    from gankit import api
    from gankit.metrics import score_run

    script = load_script("eval_deliverables")
    script.log = lambda *_: None
    cfg = api.preset("seed").with_overrides({"data.name": "digits", "train.epochs": 2, "train.checkpoint_every": 1,
                                             "train.progress": False, "train.sample_every": 0})
    api.train(cfg, tmp_path / "run", log=lambda *_: None)
    names, data = "fd200,classes200", DataConfig(name="digits")
    results, floor = script.score(tmp_path / "run", 1, data=data, names=names)
    assert sorted(results) == [1, 2] and list(floor) == ["fd200", "classes200"]
    for epoch, scores in results.items():
        direct = score_run(tmp_path / "run" / "checkpoints" / f"epoch_{epoch:04d}.pt", names, data=data, seed=1)
        assert scores == {n: {k: v for k, v in r.items() if k != "floor"} for n, r in direct["metrics"].items()}
        assert floor == {n: r["floor"] for n, r in direct["metrics"].items()}
