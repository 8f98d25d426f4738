"""bench/quick_speed.py --by-cpu: one row per CPU (model, flags) and thread count, rendered into BENCHMARKS.md's
table."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import quick_speed  # noqa: E402

from gankit.training import accel  # noqa: E402


def _row(cpu, threads, careful, fp32, bf16, shipped, auto="fp32"):
    return {"cpu": cpu, "isa": ["avx2"], "threads": threads, "torch": "2.13.0+cpu", "auto": auto, "reps": 2,
            "steps": 100, "steps_per_s": {"careful": careful, "gankit fp32": fp32, "+ bf16": bf16,
                                          "preset as shipped": shipped}}


def test_a_new_run_replaces_its_cpus_row_and_keeps_the_others():
    a, b = _row("AMD EPYC", 2, 15.0, 16.0, 2.0, 16.0), _row("Intel Xeon", 2, 44.0, 45.0, 53.0, 53.5, "bf16")
    again = _row("AMD EPYC", 2, 17.0, 18.0, 2.1, 18.0)
    assert quick_speed.merge_rows([a, b], again) == [b, again]
    other_threads = _row("AMD EPYC", 1, 9.0, 9.5, 1.1, 9.5)
    assert quick_speed.merge_rows([a, b], other_threads) == [a, b, other_threads]
    newer = {**_row("AMD EPYC", 2, 50.0, 51.0, 70.0, 71.0, "bf16"), "isa": ["avx2", "avx512bw", "avx512_bf16"]}
    assert quick_speed.merge_rows([a, b], newer) == [a, b, newer]  # the same name, another generation


def test_the_table_divides_the_rows_own_numbers():
    text = quick_speed.render_by_cpu([_row("AMD EPYC", 2, 15.0, 16.0, 2.0, 16.5),
                                      _row("Intel Xeon", 2, 44.0, 45.0, 54.0, 55.0, "bf16")])
    lines = text.splitlines()
    assert lines[-2] == ("| AMD EPYC | avx2 | 2 | 2.13.0+cpu | 2 × 100 | 15.0 | 16.0 | 2.0 | 0.12x | fp32 | 16.5 "
                         "| 1.10x |")
    assert lines[-1] == ("| Intel Xeon | avx2 | 2 | 2.13.0+cpu | 2 × 100 | 44.0 | 45.0 | 54.0 | 1.20x | bf16 | 55.0 "
                         "| 1.25x |")


def test_benchmarks_md_holds_the_table_of_the_json():
    """The "bf16 by CPU" section is the JSON's rows rendered (`--by-cpu --cached` rewrites it), no number by hand."""
    import json

    rows = json.loads(quick_speed.CPU_JSON.read_text())
    doc = (quick_speed.CPU_JSON.parents[1] / "BENCHMARKS.md").read_text()
    body = doc.split(quick_speed.CPU_START)[1].split(quick_speed.CPU_END)[0]
    assert body.strip() == quick_speed.render_by_cpu(rows)
    assert all(r["auto"] in ("fp32", "bf16") and set(r["steps_per_s"]) == {"careful", *quick_speed.BY_CPU}
               for r in rows)


def test_this_cpus_identity_names_the_flags_auto_reads():
    ident = quick_speed.cpu_identity()
    assert ident["cpu"]
    flags = accel.cpu_info()[1]
    if not flags:
        pytest.skip("this system has no /proc/cpuinfo flags")
    assert ident["isa"] == [f for f in quick_speed.ISA if f in flags]
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(ident["isa"]))
    assert not accel.native_bf16("cpu") or has_bf16  # auto takes bf16 only with bf16 instructions
