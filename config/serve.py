"""``make run``: prepare the database, then run web, worker and beat until Ctrl-C.

This process owns the embedded PostgreSQL handle (when there is no DATABASE_URL) and hands
the server's URL to its children, so there is one owner of the server's lifetime: when this
process exits, the server stops (unless something else still holds it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

STOP_GRACE_SECONDS = 15


def _prepare() -> dict[str, str]:
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("sync_platform", verbosity=1)
    call_command("bootstrap")
    env = dict(os.environ)
    if not os.environ.get("DATABASE_URL"):
        from config.embedded import embedded_postgres_url

        env["DATABASE_URL"] = embedded_postgres_url()
    env["REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _commands(port: int) -> dict[str, list[str]]:
    python = sys.executable
    concurrency = os.environ.get("WORKER_CONCURRENCY", "16")
    return {
        "web": [python, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--no-access-log"],
        "worker": [python, "-m", "celery", "-A", "config", "worker", "-Q", "default,io", "-P", "threads",
                   "-c", concurrency, "--loglevel", "INFO", "-n", "agentry@%h"],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                 "-S", "django_celery_beat.schedulers:DatabaseScheduler"],
    }  # fmt: skip


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``make run`` dies, even by SIGKILL, so a
    crash leaves no web server holding the port and no worker holding runs (Linux only; the
    worker's SIGTERM is Celery's warm shutdown, which hands its runs back)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _pidfile(port: int) -> Path:
    return Path(__file__).resolve().parent.parent / ".data" / f"make-run-{port}.pids"


def _ours(pid: int) -> bool:
    """Still one of the children this command starts (not a pid reused since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(marker in cmdline for marker in (b"uvicorn config.asgi", b"celery -A config"))


def _stop_leftovers(port: int) -> None:
    """The children of an earlier ``make run`` on this port that was killed before it could
    stop them (SIGKILL, OOM) and that outlived it: stopped before anything starts again.

    Children also get SIGTERM from the kernel when this process dies (``_die_with_parent``),
    but a child still starting up may miss it (Celery installs its handlers late)."""
    path = _pidfile(port)
    if not path.exists():
        return
    pids = [int(word) for word in path.read_text().split() if word.isdigit()]
    alive = [pid for pid in pids if _ours(pid)]
    for pid in alive:
        print(f"[agentry] stopping {pid}, left running by an earlier make run", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if _ours(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"[agentry] {name} did not stop in {STOP_GRACE_SECONDS}s; killing it", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    _stop_leftovers(port)
    env = _prepare()
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Each child in its own session: Ctrl-C reaches only us, and we stop them in order.
    for name, cmd in _commands(port).items():
        children[name] = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    pidfile = _pidfile(port)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(" ".join(str(proc.pid) for proc in children.values()) + "\n")
    print(f"[agentry] web http://127.0.0.1:{port}/ (admin /admin/, docs /api/docs/); Ctrl-C stops", flush=True)
    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"[agentry] {name} exited with {proc.returncode}; stopping the rest", flush=True)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    print("[agentry] stopping…", flush=True)
    _stop(children)
    pidfile.unlink(missing_ok=True)
    print("[agentry] stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
