"""``gankit report``: one self-contained HTML file describing a run."""
from __future__ import annotations

import argparse

NAME = "report"

EXAMPLES = """\
examples:
  gankit report runs/fm                      # writes runs/fm/report.html
  gankit report runs/fm --out fm.html        # anywhere else
  gankit report runs/fm --max-frames 30      # a shorter training animation
  gankit report runs/ring8                   # a --seeds folder: runs/ring8/seedK/report.html for each member

The file embeds every image and chart (no network, no other files): open it in any browser or mail it.
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="write a self-contained HTML report of a run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_DIR", help="a run folder, or a --seeds folder (a report per member)")
    p.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html; one run only)")
    p.add_argument("--max-frames", type=int, default=60, help="frames of the training animation (default 60)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import GankitError
    from ..checkpoint import seed_members
    from .report import write_report

    members = seed_members(args.run)
    if members is None:
        print(f"wrote {write_report(args.run, args.out, max_frames=args.max_frames)}")
        return 0
    # a --seeds folder: each member is an ordinary run, with its own report
    if args.out is not None:
        raise GankitError(f"{args.run} is a --seeds folder of {len(members)} runs and --out names one file: drop "
                          f"--out for a report in each member folder, or report one, e.g. "
                          f"gankit report {members[0]} --out {args.out}")
    paths = [write_report(m, max_frames=args.max_frames) for m in members]
    print(f"wrote {len(paths)} reports, one per member: {', '.join(map(str, paths))}")
    return 0
