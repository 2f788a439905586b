"""An arq Worker that claims due jobs in batches.

arq's own `start_jobs` claims one job at a time with four sequential Redis round trips
(WATCH, EXISTS, ZSCORE, MULTI/EXEC) inside the single polling task; on a busy event
loop that caps a worker at a few hundred job starts a second. This override claims the
same way arq does — a job's "in progress" key set only if absent, then its queue score
checked — for many jobs per round trip. Everything else (running, retrying, finishing
jobs, crons, health checks) is arq's. Written against arq 0.26 to 0.28 (`sem`,
`job_counter`, `tasks`, `run_job`, `_release_sem_dec_counter_on_complete`).
"""

from __future__ import annotations

from collections.abc import Callable

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker


class BatchingWorker(Worker):
    """arq's Worker, claiming due jobs many per Redis round trip; `on_claimed` (if set)
    hears the ids of each claimed batch just before their jobs start."""

    on_claimed: Callable[[list[str]], None] | None = None

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
                task = self.loop.create_task(self.run_job(job_id, score))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task
            if release:
                await self.pool.delete(*release)
