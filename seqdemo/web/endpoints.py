"""The one endpoint decorator, and the wiring that puts an endpoint on its real events.

`endpoint(fn, ...)` handles "function or generator" once and composes, from the inside out:
- the ZeroGPU wrapper (seqdemo.core.device.on_zero_gpu: the GPU exists only inside spaces.GPU on a ZeroGPU Space);
- error mapping: an InputError (seqdemo.core.validate) or a gr.Error is the person's to fix and is shown as
  written; anything else is logged with its traceback and shown as one plain line;
- the model threads (seqdemo.web.serving.model_threads): every model call runs on a few threads of its own.

Where the error goes depends on who called. The page passes one more input, a gr.State that its own load sets to
True (Wiring.page_flag): there a bad input becomes a message beside the control (a gr.State output that a chained
event copies into the control's message box) while every other output keeps what it showed (gr.skip). A script
(gradio_client or the REST API) has no page, so its State stays False, and the error is raised as gr.Error, as a
script expects. States are invisible to API callers, so each endpoint keeps its plain signature.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import gradio as gr

from seqdemo.core.validate import InputError
from seqdemo.web import memory, shutdown
from seqdemo.web.presentation import md

logger = logging.getLogger("seqdemo.web")

PRIVATE = {"api_visibility": "private"}  # page-only events: the named endpoints are the API
MODEL_HANDLER = "_seqdemo_model_handler"  # marks a handler that runs a model (seqdemo.web.serving.configure_queue)


def message_for(error: Exception, name: str) -> str:
    """An InputError or gr.Error: its own words. Anything else: logged with its traceback, named in one plain line
    (the page never shows a stack trace, and an unexpected error is ours to fix, not the visitor's)."""
    if isinstance(error, gr.Error):
        return error.message
    if isinstance(error, InputError):
        return str(error)
    logger.error("%s failed", name, exc_info=error)
    return f"Something went wrong inside the model ({type(error).__name__}); the server log has the details."


def api_error(error: Exception, name: str) -> gr.Error:
    """For a script: the message as a gr.Error. gradio shows it as HTML on a page, so a "<" or "&" is escaped;
    the messages never quote what was typed (seqdemo.core.validate), so a script reads them as written."""
    if isinstance(error, gr.Error):
        return error
    return gr.Error(html.escape(message_for(error, name), quote=False), print_exception=False)


def _run(pool: ThreadPoolExecutor | None, fn: Callable, *args):
    """fn(*args) on `pool`; a pool that has shut down (the server is stopping) says "restarting"."""
    return shutdown.submit(pool, fn, *args).result() if pool is not None else fn(*args)


def _steps(fn: Callable, args: tuple, pool: ThreadPoolExecutor | None):
    """fn(*args)'s values, each computed on `pool` (a generator's every step), as an iterator; after a big request
    the freed memory goes back to the system (seqdemo.web.memory)."""
    try:
        if inspect.isgeneratorfunction(fn):
            steps, done = fn(*args), object()  # calling a generator function runs none of it yet
            while (value := _run(pool, next, steps, done)) is not done:
                yield value
        else:
            yield _run(pool, fn, *args)
    finally:
        memory.after_request(sum(len(arg) for arg in args if isinstance(arg, str)))


def endpoint(fn: Callable, inputs: int, outputs: int, gpu: Callable[[Callable], Callable] | None = None,
             pool: ThreadPoolExecutor | None = None) -> Callable:
    """`fn` as a gradio event handler over `inputs` input components and `outputs` output components, plus one
    message output (see the module's docstring): `gpu` wraps it (on_zero_gpu), `pool` runs it. It returns (or,
    for a generator, yields) the outputs and the message ("" on success). Called with `inputs` values it is an
    API call; one more value, the page flag, says whether the page called it."""
    run = gpu(fn) if gpu is not None else fn

    def split(args: tuple) -> tuple[tuple, bool]:
        """The handler's arguments (its inputs, then what gradio injects, such as a gr.Request) and the flag."""
        if len(args) <= inputs:
            return args, False
        return (*args[:inputs], *args[inputs + 1:]), args[inputs] is True

    def shown(value) -> tuple:
        return (*(value if isinstance(value, tuple) else (value,)), "")

    def failed(error: Exception, on_page: bool) -> tuple:
        if not on_page:
            raise api_error(error, fn.__name__) from error
        return (*[gr.skip()] * outputs, message_for(error, fn.__name__))

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def handler(*args):
            args, on_page = split(args)
            try:
                for value in _steps(run, args, pool):
                    yield shown(value)
            except Exception as error:
                yield failed(error, on_page)

    else:

        @functools.wraps(fn)
        def handler(*args):
            args, on_page = split(args)
            try:
                return shown(next(_steps(run, args, pool)))
            except Exception as error:
                return failed(error, on_page)

    setattr(handler, MODEL_HANDLER, pool is not None)
    # gradio reads the signature: to check the argument count, and to inject a gr.Request where fn takes one
    handler.__signature__ = _with_page_flag(fn, inputs)
    return handler


def _with_page_flag(fn: Callable, inputs: int) -> inspect.Signature:
    """fn's signature with one more parameter, the page flag, after its `inputs` inputs (and before any
    gr.Request, which gradio inserts at its place)."""
    signature = inspect.signature(fn)
    parameters = list(signature.parameters.values())
    flag = inspect.Parameter("on_page", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False)
    return signature.replace(parameters=[*parameters[:inputs], flag, *parameters[inputs:]])


def show_message(message: str) -> str:
    """The message box's Markdown: the message as literal text."""
    return md(message) if message else ""


class Wiring:
    """How a tab connects its controls: `event` puts a handler on its real events (public under `api_name` when
    given), with its message box beside the control; `chain` runs it after another event, page-only."""

    def __init__(self, demo: gr.Blocks, gpu: Callable | None, pool: ThreadPoolExecutor | None):
        self.demo, self.gpu, self.pool = demo, gpu, pool
        self.page_flag = gr.State(False)  # True once the page has loaded: see the module's docstring
        self.on_page = gr.State(True)  # the flag for chained events, which only the page runs
        demo.load(lambda: True, None, self.page_flag, **PRIVATE)

    def wrap(self, fn: Callable, inputs: list, outputs: list, gpu: bool = True, model: bool = True) -> Callable:
        """`fn` as an endpoint: on the GPU wrapper when `gpu`, on the model threads when `model`."""
        return endpoint(fn, len(inputs), len(outputs), self.gpu if gpu and model else None,
                        self.pool if model else None)

    def event(self, fn: Callable, triggers: list, inputs: list, outputs: list, error: gr.Markdown,
              api_name: str | None = None, on_load: bool = False, gpu: bool = True, model: bool = True,
              **options):
        """`fn` on `triggers` as one event (public as `api_name` when given, else page-only), its message into
        `error`; `on_load`: also as the page opens (results on arrival). Returns (the wrapped handler, the
        event), so an example click can run the handler too and a chain can follow the event."""
        handler = self.wrap(fn, inputs, outputs, gpu, model)
        message = gr.State("")
        visibility = {"api_name": api_name} if api_name else PRIVATE
        triggers = [*triggers, self.demo.load] if on_load else list(triggers)
        event = gr.on(triggers, handler, [*inputs, self.page_flag], [*outputs, message], **visibility, **options)
        event.then(show_message, message, error, show_progress="hidden", **PRIVATE)
        return handler, event

    def chain(self, after, handler: Callable, inputs: list, outputs: list, error: gr.Markdown, **options):
        """Runs `handler` (from `event`) once the event `after` is done, page-only; returns the chained event."""
        message = gr.State("")
        event = after.then(handler, [*inputs, self.on_page], [*outputs, message], **PRIVATE, **options)
        event.then(show_message, message, error, show_progress="hidden", **PRIVATE)
        return event
