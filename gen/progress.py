"""Progress output for long commands (rich, on stderr so that ``--json`` stdout stays clean):
a spinner on the running step, and one line per finished step with its time."""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console

__all__ = ["steps"]


@contextmanager
def steps(title: str, *, quiet: bool = False):
    """Yields ``step(name)``: each call closes the previous step and starts the next."""
    console = Console(stderr=True, quiet=quiet)
    state = {"name": None, "t0": 0.0}
    with console.status(title) as status:

        def close():
            if state["name"] is not None:
                seconds = time.perf_counter() - state["t0"]
                console.print(f"  [green]done[/] {state['name']} ({seconds:.1f} s)")

        def step(name: str):
            close()
            state["name"], state["t0"] = name, time.perf_counter()
            status.update(f"{title}: {name}")

        try:
            yield step
            close()
        except BaseException:
            if state["name"] is not None:
                console.print(f"  [red]failed[/] {state['name']}")
            raise
