"""Progress bars for long work, on stderr, only when stderr is a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from types import TracebackType

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def stderr_is_tty() -> bool:
    """True when stderr is a terminal (bars are drawn only then)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Count(ProgressColumn):
    """`1,234/5,000 docs` or `12.3/40.0 MB`, by the task's unit."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            done = decimal(int(task.completed))
            total = decimal(int(task.total)) if task.total is not None else "?"
            return Text(f"{done}/{total}", style="progress.download")
        total_text = f"{int(task.total):,}" if task.total is not None else "?"
        return Text(f"{int(task.completed):,}/{total_text} docs", style="progress.download")


class Bar:
    """One bar of a `Bars` display (a no-op when bars are off)."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        """Move the bar forward by `n`."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def finish(self) -> None:
        """Mark the bar complete."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, completed=task.total or task.completed)


class Bars:
    """Progress bars on stderr: `with Bars() as bars: bar = bars.add("messages", 1000)`."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = stderr_is_tty() if enabled is None else enabled
        self._progress: Progress | None = None

    def __enter__(self) -> Bars:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:<32}"),
                BarColumn(),
                _Count(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._progress.start()
        return self

    def add(self, description: str, total: float | None, *, unit: str = "docs") -> Bar:
        """A new bar counting documents (`unit="docs"`) or bytes (`unit="bytes"`)."""
        if self._progress is None or total == 0:
            return Bar(None, None)
        return Bar(self._progress, self._progress.add_task(description, total=total, unit=unit))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


@contextlib.contextmanager
def steps(title: str, *, enabled: bool | None = None) -> Iterator[Callable[[str], None]]:
    """`with steps("pushing the schema") as say: say("creating index ...")`: each step is
    printed (on stdout); on a terminal a spinner on stderr also shows the step in progress
    (long backfills and index builds)."""
    if not (stderr_is_tty() if enabled is None else enabled):
        yield lambda message: print(f"  {message}", flush=True)
        return
    console = Console(stderr=True)
    with console.status(title) as status:

        def say(message: str) -> None:
            status.console.print(f"  {message}", highlight=False)
            status.update(f"{title}: {message.strip()}")

        yield say
