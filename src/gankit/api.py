"""The documented Python API; the CLI is a thin layer over these functions.

Loading and sampling live in :mod:`gankit.generator` (no trainer imported); training imports the trainer when
it is called.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

from .config import RunConfig, preset_config
from .data import Dataset
from .errors import GankitError, option
from .generator import LoadedGenerator, latents, load  # noqa: F401  (the API's loading half)

if TYPE_CHECKING:
    from .training.loop import RunResult


def preset(name: str) -> RunConfig:
    """The :class:`RunConfig` of a named preset (see ``gankit presets``)."""
    return preset_config(name)


def default_out(cfg: RunConfig) -> Path:
    import time

    return Path("runs") / f"{cfg.preset}-{cfg.data.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config: RunConfig | None = None, out: str | os.PathLike | None = None, *, dataset: Dataset | None = None,
          overwrite: bool = False, resume: bool | str | os.PathLike = False,
          log: Callable[[str], None] = print) -> RunResult:
    """Train a GAN; returns a :class:`~gankit.training.loop.RunResult` (run folder, G, D, per-step history).

    ``config``: a :class:`RunConfig` (default: the ``seed`` preset). ``out``: the run folder (default
    ``runs/<preset>-<dataset>-<time>``). ``resume``: True continues the run in ``out`` from its last checkpoint;
    a checkpoint file or run folder continues from there into the new folder ``out`` (in place without ``out``).
    ``dataset``: an in-memory :class:`~gankit.data.Dataset` to use instead of ``config.data``.
    """
    if config is None and not resume:
        config = preset_config("seed")
    if out is None:
        if resume is True:
            raise GankitError("resume=True needs the run folder: gankit.train(out=RUN_DIR, resume=True)")
        if resume:
            out, resume = resume, True
        else:
            out = default_out(config)  # type: ignore[arg-type]
    from .training.loop import Trainer

    return Trainer(config, out, dataset=dataset, overwrite=overwrite, resume=resume, log=log).fit()


LAST = Path("checkpoints") / "last.pt"  # in a run folder: the checkpoint a resume continues


class SeedRuns(NamedTuple):
    """What :func:`train_seeds` trains: the ``--seeds`` folder, each member's config and run folder, in order,
    and whether the members continue from their checkpoints."""

    root: Path
    configs: list[RunConfig]
    run_dirs: list[Path]
    resume: bool


def train_seeds(config: RunConfig | None = None, seeds: str | Sequence[int] | None = None,
                out: str | os.PathLike | None = None, *, overwrite: bool = False, resume: bool = False,
                together: bool = True, log: Callable[[str], None] = print) -> list[RunResult]:
    """Train one run per seed into a ``--seeds`` folder, exactly as ``gankit train --seeds`` does; returns the
    :class:`~gankit.training.loop.RunResult` of each member trained, in order.

    ``config``: the runs' :class:`RunConfig` (default: the ``seed`` preset); member s trains it with
    ``train.seed = data.seed = s``. ``seeds``: ``"0-4"`` (the default), ``"0,2,7"`` or a list of ints. ``out``:
    the folder (default ``runs/<preset>-<dataset>-<time>``); it gets ``ensemble.json`` and one ordinary run folder
    per seed, ``out/seedS``, which ``gankit eval``, ``report`` and ``serve`` take as one.

    ``together`` (default): the seeds train as one batched network (:mod:`gankit.training.ensemble`); a config
    an ensemble cannot batch is refused in one line, as the CLI refuses it. ``together=False``: one after another
    into the same folders, any config; ``train.time_limit`` is then the budget of the whole call (each member gets
    what the ones before it left), and a stop (the budget, Ctrl-C) ends the call with fewer results. Members
    trained together match single runs of their seeds in distribution, not number for number (their latents are
    drawn an epoch at a time), so the two ways give different weights.

    ``resume=True`` continues the ``--seeds`` folder ``out``: ``config`` None takes each member's checkpoint
    config (as ``gankit train --resume OUT`` does), a given ``config`` may change only ``train.*``; members not
    begun yet (a ``together=False`` call stopped before them) start afresh.
    """
    runs = seed_runs(config, seeds, out, resume=resume, together=together)
    return fit_seeds(runs, overwrite=overwrite, together=together, log=log)


def seed_runs(config: RunConfig | None, seeds: str | Sequence[int] | None, out: str | os.PathLike | None, *,
              resume: bool = False, together: bool = True) -> SeedRuns:
    """Check and lay out what :func:`train_seeds` trains, writing nothing (``gankit train --seeds --dry-run``
    prints it). The folder layout is :func:`gankit.checkpoint.seed_run_dirs`'s."""
    from .checkpoint import ENSEMBLE_FILE, load_checkpoint, member_seed, seed_members, seed_run_dirs
    from .training.ensemble import seed_configs

    if config is not None and not isinstance(config, RunConfig):
        raise GankitError(f"config must be a RunConfig (e.g. gankit.preset('gan-ring8')), got "
                          f"{type(config).__name__}")
    if not resume:
        cfgs = seed_configs(config if config is not None else preset_config("seed"), _seed_list(seeds))
        if together:
            _check_together(cfgs)  # before any folder is made
        root = Path(out if out is not None else default_out(cfgs[0])).expanduser()
        return SeedRuns(root, cfgs, seed_run_dirs(root, [c.train.seed for c in cfgs]), False)
    if out is None:
        raise GankitError("resume=True needs the --seeds folder: gankit.train_seeds(out=FOLDER, resume=True)")
    root = Path(out).expanduser()
    try:
        dirs = seed_members(root)
    except GankitError:
        dirs = None
    if not dirs:
        alone = option(f"gankit train --resume {root}/MEMBER", f"gankit.train(out='{root}/MEMBER', resume=True)")
        raise GankitError(f"{root / ENSEMBLE_FILE}: unreadable; resume each member folder alone with {alone}")
    saved = {d: RunConfig.from_dict(load_checkpoint(d / LAST)["config"]) for d in dirs if (d / LAST).is_file()}
    if not saved:
        raise GankitError(f"{root}: nothing to resume, none of its members has a checkpoint yet; train it afresh "
                          f"with {option('--seeds SEEDS --out ' + str(root) + ' --overwrite', 'overwrite=True')}")
    member_seeds = []
    for d in dirs:
        s = saved[d].train.seed if d in saved else member_seed(d)
        if s is None:
            raise GankitError(f"{d}: no checkpoint to resume, and its name (not seedS) gives no seed to start it "
                              f"with; train it alone")
        member_seeds.append(s)
    if seeds is not None and _seed_list(seeds) != member_seeds:
        raise GankitError(f"{root} holds the runs of seeds {','.join(map(str, member_seeds))}, which "
                          f"{option('--resume', 'resume=True')} continues; drop {option('--seeds', 'seeds')}")
    if config is not None:
        cfgs = seed_configs(config, member_seeds)
    else:  # the budget was the earlier invocation's: a resume gets its own, or none (as gankit.train)
        base = next(iter(saved.values()))
        cfgs = [(saved[d] if d in saved else seed_configs(base, [s])[0]).with_overrides({"train.time_limit": None})
                for d, s in zip(dirs, member_seeds)]
    return SeedRuns(root, cfgs, dirs, True)


def fit_seeds(runs: SeedRuns, *, overwrite: bool = False, together: bool = True,
              log: Callable[[str], None] = print) -> list[RunResult]:
    """Train what :func:`seed_runs` laid out (see :func:`train_seeds`). A new folder gets its ensemble.json once
    every member's folder is accepted and before the first step, so a stopped call can resume."""
    from .checkpoint import write_seed_members
    from .training.ensemble import Ensemble

    begun = [runs.resume and (d / LAST).is_file() for d in runs.run_dirs]
    if not together:
        return _one_after_another(runs, begun, overwrite, log)
    _check_together(runs.configs)  # a resume's configs too, with the other way in the message
    if not all(begun) and runs.resume:
        d = runs.run_dirs[begun.index(False)]
        again = option(f"gankit train --resume {runs.root} --one-after-another",
                       f"gankit.train_seeds(out='{runs.root}', resume=True, together=False)")
        raise GankitError(f"{d} has no checkpoint yet, unlike the other members: continue with {again}, which "
                          f"starts it")
    ens = Ensemble(runs.configs, runs.run_dirs, overwrite=overwrite, resume=runs.resume, log=log)
    if ens.device.type == "cpu":
        log(f"note: on a CPU, {option('--seeds', 'together=True')} trains about as fast as the same seeds one after "
            f"another (1.0-1.2x for the toy presets, docs/BENCHMARKS.md); it pays off on a GPU")
    if not runs.resume:
        write_seed_members(runs.root, [c.train.seed for c in runs.configs])
    return ens.fit()


def _one_after_another(runs: SeedRuns, begun: list[bool], overwrite: bool,
                       log: Callable[[str], None]) -> list[RunResult]:
    from .checkpoint import write_seed_members
    from .training import budget
    from .training.loop import Trainer
    from .rundir import check_out_free

    # A member not begun yet holds at most what a start that never reached a checkpoint wrote: replace it.
    fresh_overwrite = [overwrite or (runs.resume and not b) for b in begun]
    for d, b, o in zip(runs.run_dirs, begun, fresh_overwrite):  # every member's folder before the first trains
        check_out_free(d, o, b)
    if not runs.resume:
        write_seed_members(runs.root, [c.train.seed for c in runs.configs])
    limit = runs.configs[0].train.time_limit
    start = budget.clock()
    results: list[RunResult] = []
    for cfg, d, b, o in zip(runs.configs, runs.run_dirs, begun, fresh_overwrite):
        if limit is not None and results:  # the call's budget, shared: each member gets what is left
            left = limit - (budget.clock() - start)
            if left <= 0:
                break
            cfg = cfg.with_overrides({"train.time_limit": left})
        results.append(Trainer(cfg, d, overwrite=o, resume=b, log=log).fit())
        if results[-1].interrupted or results[-1].stopped_by_time:
            break
    if len(results) < len(runs.run_dirs) or results[-1].stopped_by_time:
        again = option(f"gankit train --resume {runs.root} --one-after-another",
                       f"gankit.train_seeds(out='{runs.root}', resume=True, together=False)")
        log(f"{runs.root}: stopped in seed {runs.configs[len(results) - 1].train.seed}; continue with {again}")
    return results


def _seed_list(seeds: str | Sequence[int] | None) -> list[int]:
    """``seeds`` as parse_seeds reads ``--seeds``: ``"0-4"``, ``"0,2,7"``, or a list of ints; None is 0-4."""
    from .training.ensemble import parse_seeds

    if seeds is None:
        return list(range(5))
    if isinstance(seeds, str):
        text = seeds
    elif isinstance(seeds, (list, tuple, range)) and all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds):
        text = ",".join(map(str, seeds))
    else:
        raise GankitError(f"seeds={seeds!r}: expected seeds like '0-4', '0,1,2' or a list of ints")
    try:
        return parse_seeds(text)
    except GankitError as e:  # parse_seeds names the CLI's --seeds; the API's caller typed seeds=
        said = f"--seeds {text!r}"
        msg = str(e)
        raise GankitError(option(said, f"seeds={seeds!r}") + msg[len(said):] if msg.startswith(said) else msg) \
            from None


def _check_together(cfgs: list[RunConfig]) -> None:
    from .training.ensemble import check_members

    try:
        check_members(cfgs)
    except GankitError as e:  # the CLI's message as it was; the API has the other way
        raise GankitError(option(f"{e}; --one-after-another trains them one after another",
                                 f"{e}; together=False trains them one after another")) from None
