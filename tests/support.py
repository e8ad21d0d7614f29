"""Plumbing the tests share: a free local port, a local SMTP inbox, and `paperboy serve` (or `run`)
as a subprocess that is up before a test talks to it and gone after, and headless Chromium. Import with
``from support import ...`` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import email
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from email import policy
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller


CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this sandbox cannot reach.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps every message it receives, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def wait(self, n: int, timeout: float = 30.0) -> list[email.message.EmailMessage]:
        """Account mail goes out from a worker thread after the answer: wait for it."""
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.05)
        assert len(self.messages) >= n, f"{len(self.messages)} of {n} mails arrived"
        return self.messages


@contextmanager
def smtp_server(handler, **options) -> Iterator[Controller]:
    """A real SMTP server on a free local port delivering to ``handler`` (e.g. an `Inbox`)."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@contextmanager
def chromium() -> Iterator:
    """Debian's headless Chromium (``CHROMIUM``) driven by Playwright: yields the browser."""
    from playwright import sync_api as playwright

    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


class serving:  # noqa: N801 - used like contextlib's lower-case context managers
    """Runs ``args`` (a command that serves HTTP on 127.0.0.1:``port``) for the ``with`` block.

    ``with serving(args, port, env=env) as url:`` starts the process, polls ``ready_path`` until it
    answers 2xx and yields the base URL; the test fails with the process's output if the process
    exits first or does not answer within ``timeout`` seconds. Afterwards the process is terminated
    (killed if it does not stop). ``proc`` is the process and ``output`` all it has printed so far
    (stdout and stderr, also after the block)."""

    def __init__(self, args: Sequence[str], port: int, *, env: Mapping[str, str] | None = None,
                 ready_path: str = "/healthz", timeout: float = 60.0) -> None:
        self.args, self.port, self.env = [str(a) for a in args], port, env
        self.ready_path, self.timeout = ready_path, timeout
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self._log: Path | None = None
        self._output = ""

    @property
    def output(self) -> str:
        return self._log.read_text(errors="replace") if self._log is not None else self._output

    def __enter__(self) -> str:
        # Output goes to a file, not a pipe: nobody reads a pipe while the test runs, and a full one
        # would block the server.
        fd, log = tempfile.mkstemp(prefix="paperboy-serve-", suffix=".log")
        self._log = Path(log)
        with os.fdopen(fd, "wb") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except BaseException:
            self._stop()
            raise
        return self.url

    def __exit__(self, *exc) -> None:
        self._stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                self._fail(f"exited with {self.proc.returncode} before it answered {self.ready_path}")
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"did not answer {self.ready_path} with 2xx within {self.timeout:g} s")
            try:
                if httpx.get(self.url + self.ready_path, timeout=min(30.0, max(left, 1.0))).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    def _fail(self, why: str) -> None:
        self._stop()
        pytest.fail(f"`{' '.join(self.args)}` {why}; its output:\n{self.output[-4000:]}", pytrace=False)

    def _stop(self) -> None:
        if self.proc is None or self._log is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._output, log, self._log = self.output, self._log, None
        log.unlink(missing_ok=True)
