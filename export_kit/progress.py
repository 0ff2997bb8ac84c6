"""Telling the user how long work goes: a log line per step (:data:`Log`), and one progress bar for work counted
in images (decoding a dataset, an accuracy pass): done of total, images/s and the time left. The bar is
transient: it vanishes when done, and draws nothing where the output is not a terminal."""

from __future__ import annotations

from collections.abc import Callable

#: Where a stage reports its steps: ``print`` on the console, a file's writer in a log, a list in tests.
Log = Callable[[str], None]


def images_bar(enabled: bool = True):
    """The bar, drawn only from the main thread: rich keeps one live display per console, and the targets of a
    fleet (verified in worker threads) would otherwise fight over it."""
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed or 0:,.0f} images/s")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeRemainingColumn(),
                    disable=not enabled or threading.current_thread() is not threading.main_thread(), transient=True)
