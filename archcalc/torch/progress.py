"""Progress of long work (`verify`, `export --to onnx`) on standard error, for a person watching.

The work calls a `progress(stage, done=0, total=0, item="")` callback: `stage` names what it is
doing now ("forward pass"), `done` of `total` counts its steps where it has some (layers), `item`
is the one at hand (a layer's name). `status()` gives such a callback that draws one transient
line on stderr (rich: a spinner, the stage, a bar and count where there is one, the item, the
time so far), erased when the work ends, so that nothing of it stays on screen or in a file.

It draws only when stderr is a terminal and the caller wants it (not for --json or -q): in a pipe,
a file or a CI log `status()` gives None and nothing is written. Standard output is never touched
(rich's redirection of stdout during a live display is off), so what a command prints there is
byte for byte the same either way.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Optional

Progress = Callable[..., None]


def report(progress: Optional[Progress], stage: str, done: int = 0, total: int = 0, item: str = "") -> None:
    """Call `progress` when there is one (the work's code calls this: progress=None costs nothing)."""
    if progress is not None:
        progress(stage, done, total, item)


@contextlib.contextmanager
def status(enabled: bool = True, stream=None) -> Iterator[Optional[Progress]]:
    """A progress callback drawing on `stream` (stderr), or None when disabled or when the stream
    is not a terminal. Use as `with status(not as_json) as progress: work(progress=progress)`."""
    stream = sys.stderr if stream is None else stream
    try:
        terminal = enabled and stream.isatty()
    except (AttributeError, ValueError, OSError):  # a closed or odd stream: no terminal
        terminal = False
    if not terminal:
        yield None
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from archcalc.errors import one_line

    console = Console(file=stream)
    # The line: spinner, stage, bar (pulsing for a stage without steps), time so far, count, item.
    bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), TimeElapsedColumn(),
              TextColumn("{task.fields[count]}"), console=console, transient=True,
              redirect_stdout=False, redirect_stderr=False)
    task = bar.add_task("", total=None, count="")
    shown = [None]  # the stage on screen

    def progress(stage: str, done: int = 0, total: int = 0, item: str = "") -> None:
        count = f"{done}/{total}" if total else ""
        # User text (a layer's name) shows as written, never read as rich markup.
        bar.update(task, description=escape(one_line(stage)), completed=done, total=total or None,
                   count=escape(one_line(f"{count} {item}".strip())))
        if stage != shown[0]:  # a new stage is drawn at once; steps within it at rich's refresh rate
            if shown[0] is None:  # the line appears with the first stage
                bar.start()
            shown[0] = stage
            bar.refresh()

    try:
        yield progress
    finally:
        if shown[0] is not None:
            bar.stop()  # transient: the line is erased


__all__ = ["Progress", "report", "status"]
