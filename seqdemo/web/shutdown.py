"""What a visitor is told while the server stops: "the server is restarting", never an executor's internals.

Once SIGTERM has ended the main thread, the interpreter shuts its thread pools down while gradio may still be
answering a stream for a second or two; a handler that then hands work to a pool gets
RuntimeError("cannot schedule new futures after [interpreter] shutdown"). `submit` turns exactly that error into a
gr.Error a visitor can act on; every other error passes through unchanged.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future

import gradio as gr

RESTARTING = "The server is restarting. Try again in a minute."
_POOL_CLOSED = "cannot schedule new futures after"  # both of concurrent.futures' wordings begin so


def is_shutting_down(error: BaseException) -> bool:
    """True for the error a thread pool raises once it (or the interpreter) has shut down."""
    return isinstance(error, RuntimeError) and str(error).startswith(_POOL_CLOSED)


def restarting_error() -> gr.Error:
    return gr.Error(RESTARTING, title="Restarting", print_exception=False)


def submit(executor: Executor, fn, /, *args, **kwargs) -> Future:
    """executor.submit(fn, *args, **kwargs), raising gr.Error(RESTARTING) when the pool no longer takes work."""
    try:
        return executor.submit(fn, *args, **kwargs)
    except RuntimeError as error:
        if is_shutting_down(error):
            raise restarting_error() from None
        raise
