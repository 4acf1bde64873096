"""The seqdemo page's entry point: load the two models, build the page, serve it.

    python app.py                                   # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py
    gradio app.py                                   # reload mode: finds the module-level `demo`

Hugging Face Spaces runs `python app.py` as well. The page itself lives in seqdemo.web (seqdemo.web.page.build_demo,
one module per tab); the server's settings are the SEQDEMO_* variables (seqdemo.web.settings). Tests build the
same page around small models with `build_demo(sentiment, nextword)`.
"""

from __future__ import annotations

import logging

import seqdemo
from seqdemo.core.device import device_name
from seqdemo.inference.pipeline import native_lstm_kernels
from seqdemo.web import memory, serving
from seqdemo.web.page import build_demo, launch_options
from seqdemo.web.settings import Settings

__all__ = ["build_demo", "launch_options", "load_demo", "main"]
logger = logging.getLogger("seqdemo.app")


def load_demo(settings: Settings | None = None, checkpoints: str | None = None):
    """Both models loaded once (on the GPU when there is one) and the page around them. `checkpoints`: the local
    fallback folder (default: the project's checkpoints/; see seqdemo.inference.hub.fetch_checkpoint)."""
    settings = settings or Settings.from_env()
    sentiment = seqdemo.load("sentiment", repo_id=settings.sentiment_repo, device=settings.device,
                             checkpoints=checkpoints)
    nextword = seqdemo.load("nextword", repo_id=settings.nextword_repo, device=settings.device,
                            checkpoints=checkpoints)
    logger.info("models on %s: sentiment from %s, next word from %s", device_name(sentiment.device),
                sentiment.source, nextword.source)
    return build_demo(sentiment, nextword, settings=settings)


def __getattr__(name: str):
    """The module-level `demo` that `gradio app.py` (reload mode) looks up, built on first use: importing app
    (tests, tools that want build_demo) loads no model."""
    global demo
    if name != "demo":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    demo = load_demo()
    return demo


def main(checkpoints: str | None = None) -> None:
    """Serves the page; gradio takes the address from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default
    127.0.0.1:7860), and launch() reads them itself."""
    global demo
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up checks, one line per request
    memory.limit_arenas()  # before the models and the handler threads allocate (seqdemo.web.memory)
    native_lstm_kernels()  # faster for the page's mix on a CPU; process-wide, so only the serving process sets it
    demo = load_demo(checkpoints=checkpoints)
    serving.stop_on_sigterm()
    memory.start_trimmer()
    demo.launch(**launch_options())


if __name__ == "__main__":
    main()
