""".ci/run's install steps: apt-get as root, sudo where it needs no password, else a note and on to the tests.

Each test runs a copy of the script in a folder of its own, as an unprivileged user: ``nobody`` when the suite
runs as root (CI does), else the current user. apt-get and sudo are stubs where a test needs them to succeed.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "run"
SKIPPED = "the tests that need them will be skipped"


def has_passwordless_sudo():
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


@pytest.fixture
def work():
    """A folder every user can enter and write (pytest's tmp_path is private to the user running the tests)."""
    d = Path(tempfile.mkdtemp(prefix="gankit-ci-"))
    d.chmod(0o777)
    (d / ".ci").mkdir(mode=0o755)
    shutil.copy(SCRIPT, d / ".ci" / "run")
    yield d
    shutil.rmtree(d)


def run_unprivileged(work, command, stubs=None):
    """``bash -c command`` in ``work`` as a user who is not root; ``stubs``: {name: shell body} put first on PATH."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "LC_ALL": "C"}
    if stubs:
        bin_dir = work / "bin"
        bin_dir.mkdir(mode=0o755)
        for name, body in stubs.items():
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bin_dir / name).chmod(0o755)
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
    kw = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        kw = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    elif has_passwordless_sudo() and not stubs:
        pytest.skip("this user has sudo without a password: .ci/run would install through it")
    return subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=60,
                          **kw)


def test_without_root_or_sudo_the_install_is_skipped_with_a_note(work):
    r = run_unprivileged(work, ". .ci/run; apt_install dataset-fashion-mnist chromium; echo next step")
    assert r.returncode == 0, r.stderr
    why = "not root, and no sudo without a password" if shutil.which("apt-get") else "no apt-get"
    assert f".ci/run: note: cannot install dataset-fashion-mnist chromium ({why}); {SKIPPED}" in r.stderr
    assert "installing" not in r.stderr  # apt-get is not even tried
    assert r.stdout == "next step\n"


def test_sudo_is_used_where_it_needs_no_password(work):
    calls = work / "calls"
    stubs = {"sudo": f'[ "$1" = -n ] && shift; echo "sudo $*" >> {calls}; exec "$@"',
             "apt-get": f'echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> {calls}'}
    r = run_unprivileged(work, ". .ci/run; apt_install chromium", stubs)
    assert r.returncode == 0, r.stderr
    assert ".ci/run: installing chromium (sudo apt-get; real data and a browser for the tests)" in r.stderr
    assert calls.read_text().splitlines() == [
        "sudo true",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        "apt-get update -qq DEBIAN_FRONTEND=noninteractive",
        "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        "apt-get install -y -qq chromium DEBIAN_FRONTEND=noninteractive"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path: CI runs the suite as root")
def test_as_root_apt_get_runs_directly_and_a_failure_is_a_note(work):
    calls, apt_get = work / "calls", work / "bin" / "apt-get"
    apt_get.parent.mkdir()
    env = {"PATH": f"{apt_get.parent}:{os.environ['PATH']}", "LC_ALL": "C"}
    for body, expect in ((f'echo "apt-get $*" >> {calls}', ".ci/run: installing chromium (apt-get; "),
                         ("exit 100", f".ci/run: note: apt-get could not install chromium; {SKIPPED}")):
        apt_get.write_text(f"#!/bin/sh\n{body}\n")
        apt_get.chmod(0o755)
        r = subprocess.run(["bash", "-c", ". .ci/run; apt_install chromium"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and expect in r.stderr, r.stderr
    assert calls.read_text().splitlines() == ["apt-get update -qq", "apt-get install -y -qq chromium"]


def test_install_only_runs_both_steps_and_stops(work):
    """The whole script as an unprivileged user (pip is a stub: it records its arguments); no pytest run."""
    python = work / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "python $*" >> {work / "calls"}\n')
    python.chmod(0o755)
    r = run_unprivileged(work, "bash .ci/run --install-only")
    assert r.returncode == 0, r.stderr
    assert (".ci/run: installing gankit and its test dependencies into .venv (pip, pinned by constraints.txt)"
            in r.stderr)
    assert (work / "calls").read_text() == ("python -m pip install -q --disable-pip-version-check -c constraints.txt "
                                            "-e .[all,test,browser]\n")
    missing = subprocess.run(["bash", "-c", ". .ci/run; missing_system_packages"], cwd=work, capture_output=True,
                             text=True).stdout.split()
    if missing:  # this machine lacks them: the note, not an abort
        assert f"note: cannot install {' '.join(missing)} (" in r.stderr
