"""The ``gankit`` command: a thin layer over :mod:`gankit.api`."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from .config import PRESETS, RunConfig, all_keys, did_you_mean, list_presets, preset_config, unknown_key_error
from .errors import GankitError, cli_spelling
from .checkpoint import ENSEMBLE_FILE

TRAIN_EXAMPLES = """\
examples:
  gankit train                                   # seed GAN on MNIST (or digits, offline), 30 epochs
  gankit train --preset seed --dataset fashion-mnist --epochs 5 --out runs/fm
  gankit train --dataset digits --steps 200 --train.log_every 20 --out runs/tiny
  gankit train --optim.g_lr 2e-4 --loss.real_target 1.0 --model.g_hidden 256,256 --dry-run
  gankit train --resume runs/fm --epochs 10      # continue a run to 10 epochs
  gankit train --dataset fashion-mnist --epochs 30 --time 10m --out runs/fm30   # stop after 10 minutes, saved
  gankit train --resume runs/fm --time 1.5h      # continue a run for at most 1.5 hours more
  gankit train --dataset digits --steps 100 --nproc 2 --out runs/ddp   # 2 processes (torch.distributed)
  gankit train --preset gan-ring8 --seeds 0-4 --device cuda --out runs/ring8   # 5 seeds as one batched run

Any config field is an option: --SECTION.FIELD VALUE (sections: data, model, loss, optim, train).

--time stops at the first step after the budget (counted from the start of this invocation; a resume gets its
own --time, or none), saves the checkpoint, log and grid, prints how to continue, and exits 0. The run's length
and any schedule over it (optim.lr_schedule linear, loss.instance_noise) stay those of --steps/--epochs: a run
stopped early has not finished its decay, and resuming finishes it exactly as one uninterrupted run would.
"""

SAMPLE_EXAMPLES = """\
examples:
  gankit sample runs/fm --n 1000 --out samples.npz          # uint8 images + samples_grid.png
  gankit sample runs/fm/checkpoints/last.pt --n 64 --out pngs --seed 3   # pngs/0.png ... + pngs_grid.png
  gankit sample runs/fm --n 64 --scale 0.7 --out typical.npz   # truncated latents: more typical samples
  gankit sample runs/cgan --n 64 --label 7 --out sevens.npz    # a conditional run (cgan-mnist): class 7 only
  gankit sample runs/fm --interpolate 3 8 --steps 12 --out walk.gif   # a latent walk, there and back
  gankit sample runs/fm --interpolate 3 8 --mode lerp --out walk.png  # the same path straight, as one strip
"""

MAIN_EXAMPLES = """\
examples:
  gankit train --dataset fashion-mnist --epochs 5 --out runs/fm
  gankit sample runs/fm --n 64 --out grid_samples
  gankit presets
Run 'gankit COMMAND --help' for a command's options.
"""


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors (a missing or ill-typed option) are one line, like every other error:
    a :class:`GankitError` that :func:`main` prints, instead of the usage block and ``sys.exit``."""

    def error(self, message: str):  # type: ignore[override]
        raise GankitError(f"{message}; see '{self.prog} --help'")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gankit", description="Train, sample and study GANs, offline-first.",
                                allow_abbrev=False,
                                epilog=MAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a GAN", epilog=TRAIN_EXAMPLES, allow_abbrev=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--preset", help=f"named preset ({', '.join(list_presets())}); default seed")
    t.add_argument("--dataset", help="auto (default), mnist, fashion-mnist, digits, idx, folder, cifar10, "
                                     "stacked-mnist, ring8, grid25, mog1d, drawn (a gankit lab points.json in "
                                     "--data-dir)")
    t.add_argument("--data-dir", help="folder with the dataset files (searched first)")
    t.add_argument("--epochs", type=int, help="number of epochs")
    t.add_argument("--steps", type=int, help="number of steps (overrides --epochs)")
    t.add_argument("--time", metavar="DURATION",
                   help="wall-clock budget for this invocation: 90s, 10m, 1.5h or seconds (train.time_limit); "
                        "stops, saves and says how to resume")
    t.add_argument("--batch-size", type=int, help="batch size")
    t.add_argument("--seed", type=int, help="random seed")
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--out", help="run folder (default runs/<preset>-<dataset>-<time>)")
    t.add_argument("--overwrite", action="store_true", help="replace the files of an existing run folder")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint; "
                   "a checkpoint file continues in its run folder, or with --out NEW in a new one")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--deterministic", action="store_true",
                   help="deterministic GPU kernels (slower); CPU runs are reproducible without it")
    t.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/tensorboard (TensorBoard format)")
    t.add_argument("--eval-every", type=int, default=0, metavar="K",
                   help="every K epochs, score G and append to RUN_DIR/metrics.jsonl (see 'gankit eval')")
    t.add_argument("--eval-metrics", help="metrics for --eval-every (default fd5k)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--seeds", metavar="LIST",
                   help="train one run per seed (0-4 or 0,1,2; train.seed = data.seed = s) as one batched network "
                        "into OUT/seedS; fastest on a GPU with --train.cuda_graphs true")
    t.add_argument("--one-after-another", action="store_true",
                   help="with --seeds (or the resume of a --seeds folder): train the runs one after another, each "
                        "the single run of its seed, into the same folders: any config, as fast as together on a "
                        "CPU; --time is then the budget of all of them")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train with N processes on this machine (torchrun; --batch-size is the global batch)")

    s = sub.add_parser("sample", help="write samples of a trained generator", epilog=SAMPLE_EXAMPLES,
                       allow_abbrev=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT")
    s.add_argument("--n", type=int, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="FILE.npz or a folder for PNGs")
    s.add_argument("--seed", type=int, help="latent seed (default 0)")
    s.add_argument("--label", type=int, metavar="K",
                   help="draw every sample of class K (a conditional run; a self-conditioned one, data.clusters: "
                        "cluster K, 0 the largest). Default: the classes in turn, or the clusters by their sizes")
    s.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="latent scale, 0 to 3: truncation towards the mean of z, below 1 more typical and less "
                        "varied samples (default 1, untruncated); the studio's latent scale")
    s.add_argument("--interpolate", type=int, nargs=2, metavar=("SEED_A", "SEED_B"),
                   help="instead of samples: the path from SEED_A's first latent to SEED_B's, written as a .png "
                        "strip, a .gif loop (there and back) or an .npz of its images; the studio's interpolation")
    s.add_argument("--steps", type=int, help="--interpolate: images along the path, ends included (default 10)")
    s.add_argument("--mode", choices=("slerp", "lerp"),
                   help="--interpolate: along the sphere Gaussian latents lie near (slerp, default) or straight")
    s.add_argument("--frame-ms", type=int, help="--interpolate to a .gif: milliseconds per frame (default 100)")
    s.add_argument("--zoom", type=int, help="--interpolate to a .png or .gif: upscale 1 to 16 times (default 1)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output")

    sub.add_parser("presets", help="list the named presets", formatter_class=argparse.RawDescriptionHelpFormatter,
                   epilog="examples:\n  gankit presets\n  gankit train --preset seed-plus --dataset fashion-mnist"
                          " --dry-run\n")
    for module in _command_modules():
        module.add_parser(sub)
    return p


def _command_modules() -> list:
    """Subcommands that live beside the parts they drive. Each module has ``NAME``,
    ``add_parser(subparsers)`` and ``run(args) -> int``; add one import line here per command."""
    mods: list = []
    from .serve import cli_report, cli_serve
    mods += [cli_serve, cli_report]
    from .metrics import command as eval_command, evaluator_command
    mods += [eval_command, evaluator_command]
    from .theory import command as theory_cmd
    mods.append(theory_cmd)
    from .lab import cli_lab
    mods.append(cli_lab)
    return mods


def unrecognized(tok: str, command: str) -> GankitError:
    """The one-line error for an argument ``gankit COMMAND`` does not take, naming the closest options (for
    ``train``, config keys too)."""
    hint = None
    if tok.startswith("-"):
        sub = _subparsers(_parser())[command]
        options = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
        if command == "train":
            options += ["--" + k for k in all_keys()]
        hint = did_you_mean(tok.split("=", 1)[0], options)
    see = f"see 'gankit {command} --help'"
    return GankitError(f"unrecognized argument {tok!r}; {hint or see}")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    """``['--train.lr', '1e-3', '--model.z_dim=64']`` -> {'train.lr': '1e-3', 'model.z_dim': '64'}."""
    out: dict[str, str] = {}
    valid = set(all_keys())
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--") or "." not in tok.split("=")[0]:
            raise unrecognized(tok, "train")
        if "=" in tok:
            key, value = tok[2:].split("=", 1)
            i += 1
        else:
            key = tok[2:]
            if i + 1 >= len(tokens):
                raise GankitError(f"option --{key} needs a value")
            value = tokens[i + 1]
            i += 2
        if key not in valid:
            raise unknown_key_error(key)
        out[key] = value
    return out


def build_config(args: argparse.Namespace, extra: list[str], base: RunConfig | None = None) -> RunConfig:
    if base is not None and args.preset is not None and args.preset != base.preset:
        raise GankitError(f"--resume: the run was trained with preset {base.preset}; drop --preset {args.preset} "
                          f"(only train.* may change when resuming)")
    cfg = base if base is not None else preset_config(args.preset or "seed")
    flags: dict[str, Any] = {}
    if args.dataset is not None:
        flags["data.name"] = args.dataset
    if args.data_dir is not None:
        flags["data.dir"] = args.data_dir
    if args.epochs is not None:
        flags["train.epochs"] = args.epochs
        flags["train.steps"] = None
    if args.steps is not None:
        flags["train.steps"] = args.steps
    if args.time is not None:
        from .training.budget import parse_duration

        flags["train.time_limit"] = parse_duration(args.time)
    elif base is not None:  # the budget was the earlier invocation's: a resume gets its own --time, or none
        flags["train.time_limit"] = None
    if args.batch_size is not None:
        flags["train.batch_size"] = args.batch_size
    if args.seed is not None:
        flags["train.seed"] = args.seed
    if args.device is not None:
        flags["train.device"] = args.device
    if args.no_progress:
        flags["train.progress"] = False
    if args.deterministic:
        flags["train.deterministic"] = True
    flags.update(parse_overrides(extra))
    return cfg.with_overrides(flags)


def check_run(args: argparse.Namespace, extra: list[str], cfg: RunConfig) -> None:
    """Refuse now what the run would refuse before loading any data, on a --dry-run as on a run: the config
    (training.loop.check_config: dataset name, model, loss), and a device gankit cannot use, named by the option
    the user typed. A dry run checks only that gankit runs on such a device: its config may be for a GPU box."""
    from .device import check_device_name, resolve_device
    from .training.loop import check_config

    check_config(cfg)
    typed = ("--train.device" if any(t.split("=", 1)[0] == "--train.device" for t in extra)  # overrides --device
             else "--device" if args.device is not None else None)
    if args.dry_run:
        check_device_name(cfg.train.device, typed or "train.device")
    else:
        resolve_device(cfg.train.device, typed or "train.device", flag=typed or "--device")


def _say_auto_precision(cfg: RunConfig) -> None:
    """--dry-run: what train.precision auto takes on this machine (the run's log and manifest say it too)."""
    if cfg.train.precision == "auto":
        from .device import resolve_device
        from .training.accel import auto_precision

        kind = resolve_device(cfg.train.device, "train.device").type
        print(f"# train.precision auto: {auto_precision(kind)} on this {kind}", file=sys.stderr)


def _train(args: argparse.Namespace, cfg: RunConfig, out: str, **kw: Any):
    """api.train, plus the training callbacks that flags ask for (--tensorboard, --eval-every)."""
    from . import api

    if not args.tensorboard and not args.eval_every:
        return api.train(cfg, out, **kw)
    from .training.loop import Trainer

    callbacks = []
    if args.eval_every:
        from .metrics import training_callback
        callbacks.append(training_callback(args.eval_metrics or "fd5k", args.eval_every))  # bad names fail here
    if args.tensorboard:
        from .serve.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger()  # a missing package fails here, before the run folder is made
    trainer = Trainer(cfg, out, **kw)
    if args.tensorboard:
        logger.attach(trainer)
    for fn in callbacks:
        trainer.add_callback("on_epoch_end", fn)
    return trainer.fit()


def _train_seeds(args: argparse.Namespace, extra: list[str]) -> int:
    """--seeds, or --resume of a --seeds folder: :func:`gankit.api.train_seeds` (together), in its two halves so
    that --dry-run prints what it would train."""
    from . import api

    for bad, flag in ((args.nproc, "--nproc"), (args.tensorboard, "--tensorboard"), (args.eval_every, "--eval-every"),
                      (args.seed is not None, "--seed")):
        if bad:
            raise GankitError(f"{flag} does not combine with --seeds (or the resume of a --seeds folder)")
    together = not args.one_after_another
    if args.resume:
        if args.out and args.out != args.resume:
            raise GankitError("--resume continues in its own folder; drop --out")
        runs = api.seed_runs(None, args.seeds, args.resume, resume=True, together=together)
        runs = runs._replace(configs=[build_config(args, extra, base=c) for c in runs.configs])
    else:
        runs = api.seed_runs(build_config(args, extra), args.seeds, args.out, together=together)
    cfgs, root, names = runs.configs, runs.root, [d.name for d in runs.run_dirs]
    check_run(args, extra, cfgs[0])
    if args.dry_run:
        print(cfgs[0].to_json())  # the members differ only in train.seed and data.seed
        print(f"# {len(cfgs)} runs, seeds {', '.join(str(c.train.seed) for c in cfgs)} (train.seed = data.seed): "
              f"{', '.join(str(root / n) for n in names)}", file=sys.stderr)
        return 0
    results = api.fit_seeds(runs, overwrite=args.overwrite, together=together)
    if any(r.interrupted for r in results):
        return 130
    if results[-1].stopped_by_time or len(results) < len(cfgs):  # the stop line said where and how to continue
        return 0
    print(f"done: {len(results)} runs (seeds {', '.join(str(c.train.seed) for c in cfgs)}), {results[0].step} steps "
          f"each{' (one after another)' if not together else ''}; run folders {root}/{{{','.join(names)}}}")
    return 0


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    from dataclasses import replace

    from . import api
    from .checkpoint import load_checkpoint, resolve_checkpoint
    from .data import run_data

    if args.eval_metrics is not None and not args.eval_every:  # it would score nothing: refused, not ignored
        raise GankitError("--eval-metrics names what --eval-every K scores every K epochs; add --eval-every K")
    if args.seeds or (args.resume and (Path(args.resume) / ENSEMBLE_FILE).is_file()):
        return _train_seeds(args, extra)
    if args.one_after_another:
        raise GankitError("--one-after-another trains the runs of --seeds; add --seeds LIST (or --resume a --seeds "
                          "folder)")
    if args.resume:
        ckpt = resolve_checkpoint(args.resume)
        saved = RunConfig.from_dict(load_checkpoint(ckpt)["config"])
        cfg = build_config(args, extra, base=saved)
        check_run(args, extra, replace(cfg, data=run_data(cfg.data, ckpt)))  # drawn points: the run folder's own
        if args.dry_run:
            print(cfg.to_json())
            _say_auto_precision(cfg)
            return 0
        # --out: continue from the checkpoint in a new folder (in place when it is the checkpoint's run folder)
        result = _train(args, cfg, args.out or args.resume, resume=args.resume if args.out else True,
                        overwrite=args.overwrite)
    else:
        cfg = build_config(args, extra)
        check_run(args, extra, cfg)
        out = args.out or str(api.default_out(cfg))
        if args.dry_run:
            print(cfg.to_json())
            print(f"# run folder: {out}", file=sys.stderr)
            _say_auto_precision(cfg)
            return 0
        result = _train(args, cfg, out, overwrite=args.overwrite)
    if result.interrupted:
        return 130
    if result.stopped_by_time:  # the stop line said where and how to continue
        return 0
    if int(os.environ.get("RANK", "0") or 0) == 0:  # under torchrun, rank 0 speaks for the run
        print(f"done: {result.step} steps; samples in {result.run_dir / 'samples'}; "
              f"checkpoint {result.checkpoint()}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from . import api
    from .device import resolve_device

    resolve_device(args.device, "--device")  # the error names the option
    walk = {"--steps": args.steps, "--mode": args.mode, "--frame-ms": args.frame_ms, "--zoom": args.zoom}
    if args.interpolate is None:
        given = [k for k, v in walk.items() if v is not None]
        if given:  # an option that would change nothing is refused, not ignored
            raise GankitError(f"{given[0]} applies to --interpolate SEED_A SEED_B only")
    elif args.n is not None or args.seed is not None:
        raise GankitError(f"--interpolate draws its own path (its ends are the seeds it names, its length "
                          f"--steps): drop {'--n' if args.n is not None else '--seed'}")
    elif args.frame_ms is not None and not args.out.endswith(".gif"):
        raise GankitError("--frame-ms times the frames of a .gif loop; --out names no .gif")
    elif args.zoom is not None and args.out.endswith(".npz"):
        raise GankitError("--zoom upscales a .png strip or a .gif loop; an .npz keeps the images at their size")
    what = "".join([f" of class {args.label}" if args.label is not None else "",
                    f" at latent scale {args.scale:g}" if args.scale != 1.0 else ""])
    g = api.load(args.run, device=args.device)
    if args.interpolate is not None:
        a, b = args.interpolate
        steps = 10 if args.steps is None else args.steps
        out = g.save_interpolation(args.out, a, b, steps, args.mode or "slerp", args.scale, args.label,
                                   100 if args.frame_ms is None else args.frame_ms,
                                   1 if args.zoom is None else args.zoom, args.overwrite)
        print(f"wrote the interpolation from seed {a} to seed {b} ({steps} steps{what}) to {out}")
        return 0
    n = 64 if args.n is None else args.n
    files = g.save(n, args.out, seed=args.seed or 0, overwrite=args.overwrite, label=args.label, scale=args.scale)
    print(f"wrote {n} samples{what} to {args.out} (grid: {files[-1]})")
    return 0


def cmd_presets() -> int:
    width = max(map(len, PRESETS))
    for name in list_presets():
        print(f"{name:<{width}}  {PRESETS[name][0]}")
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


@cli_spelling  # messages name --flags, not the Python API's arguments
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    debug = "--debug" in argv
    try:
        args, extra = parser.parse_known_args(argv)
        if args.version:
            from . import __version__
            print(f"gankit {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            return 2
        if extra and args.command != "train":
            raise unrecognized(extra[0], args.command)
        if args.command == "train":
            if args.nproc is not None and args.seeds:
                raise GankitError("--nproc does not combine with --seeds (the seeds train as one batched network)")
            if args.nproc is not None and "WORLD_SIZE" not in os.environ and not args.dry_run:
                from .training.distributed import launch

                check_run(args, extra, build_config(args, extra))  # bad options fail before any process starts
                return launch(args.nproc, _without_nproc(argv))
            return cmd_train(args, extra)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "presets":
            return cmd_presets()
        for module in _command_modules():
            if args.command == module.NAME:
                return int(module.run(args))
        raise GankitError(f"unknown command {args.command!r}")  # pragma: no cover
    except GankitError as e:
        if debug:
            traceback.print_exc()
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
