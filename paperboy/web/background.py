"""Background work of each web worker, beside the event loop: the job runner (submissions, library
imports), the lexical index following the store, and the optional digest scheduler. Each runs in a
worker thread; the runner and the scheduler on engines of their own (their own SQLite connection
and model), so a request never waits on arXiv, the model or SMTP."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ..engine import Engine

DIGEST_EVERY = 600.0
log = logging.getLogger("paperboy.web")
T = TypeVar("T")


def send_due_digests(settings: dict[str, Any]) -> None:
    """One scheduler pass, on its own engine (and SQLite connection) in a worker thread."""
    with Engine(dict(settings)) as engine:
        run = engine.digests().run()
    if run.sent or run.failed:
        log.warning("digests: %d sent, %d failed %s", run.sent, len(run.failed), run.failed[:3])


async def digest_loop(settings: dict[str, Any]) -> None:
    while True:
        try:
            await asyncio.to_thread(send_due_digests, settings)
        except Exception:  # noqa: BLE001 - the scheduler must outlive one bad pass
            log.exception("digest scheduler pass failed")
        await asyncio.sleep(DIGEST_EVERY)


async def follow_loop(engine: Engine) -> None:
    """Keep the lexical and author indexes, the TF-IDF rows and the topic model following the store
    from a worker thread: papers another process ingested become searchable within
    ``index_sync_seconds`` and no request waits while they are indexed or assigned their topics
    (the vectors' deltas are small and follow on the request path). Each step has its own try: one
    failing does not hold the others back."""
    from ..services.topics import follow_topics

    steps = (("the lexical index", engine.follow_lexical),
             # The author index is built here too (6 s at 38,858 papers), not by the first author page.
             ("the author index", engine.authors),
             ("the TF-IDF rows and topics", partial(follow_topics, engine)))
    while True:
        for name, step in steps:
            try:
                await asyncio.to_thread(step)
            except Exception:  # noqa: BLE001 - the follower must outlive one bad pass
                log.exception("following %s failed", name)
        await asyncio.sleep(float(engine.settings["index_sync_seconds"]))


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if not future.done():  # the loop may have given up on it (shutdown)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class JobRunner:
    """Runs queued jobs beside the event loop with its own engine (its own SQLite connection and
    model), so a submission's arXiv fetch or a library import never holds up a request. Each pass
    runs on a daemon thread: stopping the server does not wait for a long import, whose job is
    taken up again when its lease runs out (and given up after ``job_max_attempts``)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings, self.wake = dict(settings), asyncio.Event()
        self.engine: Engine | None = None
        self.busy = threading.Lock()  # one pass at a time; held while a pass runs

    def _pass(self) -> Any:
        with self.busy:
            if self.engine is None:
                self.engine = Engine(self.settings)
            return self.engine.run_jobs()

    async def _run_pass(self) -> Any:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def work() -> None:
            try:
                result, error = self._pass(), None
            except BaseException as e:  # noqa: BLE001 - handed to the loop, which logs it
                result, error = None, e
            try:
                loop.call_soon_threadsafe(_settle, done, result, error)
            except RuntimeError:  # the loop closed meanwhile (the server stopped): nobody waits for it
                pass

        threading.Thread(target=work, name="paperboy-jobs", daemon=True).start()
        return await done

    async def loop(self) -> None:
        while True:
            try:
                await self._run_pass()
            except Exception:  # noqa: BLE001 - the runner must outlive one bad pass
                log.exception("job runner pass failed")
            try:
                await asyncio.wait_for(self.wake.wait(), self.settings["job_poll_seconds"])
            except TimeoutError:
                pass
            self.wake.clear()

    def close(self) -> None:
        """Close the engine unless a pass is still running (its daemon thread ends with the process)."""
        if self.busy.acquire(blocking=False):
            try:
                if self.engine is not None:
                    self.engine.close()
                    self.engine = None
            finally:
                self.busy.release()


async def off_loop(request: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run a heavy read (a reader's recommendations and interests: k-means, a per-reader SVM, the
    model) on the app's one heavy-read thread, so the event loop keeps answering everyone else.
    One thread: heavy reads queue behind each other instead of competing for two cores."""
    return await asyncio.get_running_loop().run_in_executor(request.app.state.heavy, partial(fn, *args))
