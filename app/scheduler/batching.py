"""An arq Worker that claims due jobs in batches and runs Convect's jobs on a short path.

arq's own `start_jobs` claims one job at a time with four sequential Redis round trips
(WATCH, EXISTS, ZSCORE, MULTI/EXEC) inside the single polling task; on a busy event
loop that caps a worker at a few hundred job starts a second. This override claims the
same way arq does — a job's "in progress" key set only if absent, then its queue score
checked — for many jobs per round trip.

arq's `run_job` then spends two Redis transactions on every job (read the job's pickled
definition and bump its try counter; delete its keys when it ends), about 12 commands
a job and more worker CPU than the scheduled mutation itself. A Convect job needs none
of that: its id is the scheduled function's id and PostgreSQL's row says what is left
to do. Jobs that `direct` accepts run on a short path (`run_direct(id, try)`) whose ends
are sent together: one pipeline removes every job finished since the last one. A job
whose end was never sent (the worker died) is delivered again after its lease and finds
its row done. Other jobs (arq's crons) go through arq's `run_job` unchanged. Written
against arq 0.26 to 0.28 (`sem`, `job_counter`, `tasks`, `job_tasks`, `run_job`,
`_release_sem_dec_counter_on_complete`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Retry, Worker

log = logging.getLogger("convect.worker")
MAX_TRIES_KEPT = 10_000


class BatchingWorker(Worker):
    """arq's Worker, claiming due jobs many per Redis round trip; `on_claimed` (if set)
    hears the ids of each claimed batch just before their jobs start; jobs `direct`
    accepts are run by `run_direct` without arq's per-job bookkeeping."""

    on_claimed: Callable[[list[str]], None] | None = None
    direct: Callable[[str], bool] | None = None
    run_direct: Callable[[str, int], Coroutine[Any, Any, None]] | None = None
    direct_timeout_s: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ends: list[tuple[str, int | None]] = []  # (job id, new score or None: done)
        self._tries: dict[str, int] = {}
        self._ender: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True once arq's loop has opened its Redis pool (jobs can be claimed)."""
        return self._pool is not None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim and start as many of `job_ids` as there are free slots."""
        candidates = [j.decode() for j in job_ids]
        candidates = [j for j in candidates if j not in self.tasks]
        timeout_ms = int(self.in_progress_timeout_s * 1000)
        while candidates:
            free = self.max_jobs - self.job_counter
            if free <= 0:
                return
            chunk, candidates = candidates[:free], candidates[free:]
            async with self.pool.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.set(in_progress_key_prefix + job_id, b"1", px=timeout_ms, nx=True)
                    pipe.zscore(self.queue_name, job_id)
                replies = await pipe.execute()
            now = timestamp_ms()
            release = []
            starting: list[tuple[str, int]] = []
            for i, job_id in enumerate(chunk):
                claimed, score = replies[2 * i], replies[2 * i + 1]
                if not claimed:
                    continue  # running elsewhere
                if not score or score > now:  # finished meanwhile, or deferred again
                    release.append(in_progress_key_prefix + job_id)
                    continue
                starting.append((job_id, int(score)))
            if starting and self.on_claimed is not None:
                self.on_claimed([job_id for job_id, _ in starting])
            for job_id, score in starting:
                await self.sem.acquire()
                self.job_counter += 1
                if self.direct is not None and self.direct(job_id):
                    task = self.loop.create_task(self._run_direct_job(job_id, score))
                else:
                    task = self.loop.create_task(self.run_job(job_id, score))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task
            if release:
                await self.pool.delete(*release)

    async def _run_direct_job(self, job_id: str, score: int) -> None:
        """Run one of Convect's jobs; its end (done, or due again later) is sent in a batch."""
        assert self.run_direct is not None
        if len(self._tries) > MAX_TRIES_KEPT:  # jobs retried here that another worker ended
            self._tries.clear()
        job_try = self._tries.get(job_id, 0) + 1  # in memory: it only paces the backoff
        self._tries[job_id] = job_try
        again: int | None = None
        task = self.loop.create_task(self.run_direct(job_id, job_try))
        self.job_tasks[job_id] = task
        try:
            await asyncio.wait_for(task, self.direct_timeout_s)
        except Retry as exc:  # transient: due again after the delay
            again = timestamp_ms() + (exc.defer_score or 0)
            self.jobs_retried += 1
        except asyncio.CancelledError:  # shutting down: free it for another worker now
            self.jobs_retried += 1
            again = score
        except Exception:
            log.exception("job %s failed", job_id)
            self.jobs_failed += 1
        else:
            self.jobs_complete += 1
        finally:
            self.job_tasks.pop(job_id, None)
        if again is None:
            self._tries.pop(job_id, None)
        self._ends.append((job_id, again))
        if self._ender is None or self._ender.done():
            self._ender = self.loop.create_task(self._send_ends())

    async def _send_ends(self) -> None:
        """Send the ends of finished jobs, many per pipeline."""
        await asyncio.sleep(0)  # let jobs finishing in the same loop turn join
        while self._ends:
            ends, self._ends = self._ends, []
            done = [job_id for job_id, again in ends if again is None]
            try:
                async with self.pool.pipeline(transaction=False) as pipe:
                    if done:
                        pipe.zrem(self.queue_name, *done)
                        pipe.delete(*(job_key_prefix + j for j in done))
                        pipe.delete(*(retry_key_prefix + j for j in done))
                    for job_id, again in ends:
                        if again is not None:
                            pipe.zadd(self.queue_name, {job_id: again}, xx=True)
                    pipe.delete(*(in_progress_key_prefix + j for j, _ in ends))
                    await pipe.execute()
            except Exception as exc:  # the jobs are delivered again after their lease
                log.warning("could not send the end of %d job(s): %s", len(ends), exc)

    async def close(self) -> None:
        """arq's close, after the running jobs have ended and their ends were sent."""
        if self._pool is not None:
            if not self._handle_signals:
                self.handle_sig(signal.SIGUSR1)  # what arq's close does first: cancel jobs
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            while self._ender is not None and not self._ender.done():
                await asyncio.shield(self._ender)
        await super().close()
