"""Every endpoint and parameter against hostile values: wrong types, numbers as strings, NaN and infinities, huge and
negative numbers, unknown choices, 1-10 MB texts, control characters, lone surrogates, HTML and Markdown.

Each call must give a result or a gr.Error whose message names the parameter (or says the text is empty), quotes
nothing of the value, and is not HTML-escaped. Most of the table calls the page's own handlers (the functions
gradio calls); a smaller part goes through gradio_client and raw HTTP against the served page, which must still
answer afterwards."""

from __future__ import annotations

import json
import math

import gradio as gr
import httpx
import pytest
from conftest import serve_locally

import app
from seqdemo.core.validate import InputError
from seqdemo.web import endpoints, limits

HTML = '<img src=x onerror="window.pwned=1"><script>alert(1)</script>'
MARKDOWN = "**bold** [link](javascript:alert(1)) `code` # heading\n| a | b |"
ONE_MB = "a good film, " * 80_000
TEN_MB = "x" * 10_000_000

BASELINE = {  # a valid call of each endpoint, by parameter name
    "classify": {"text": "I loved it", "method": "evidence"},
    "trajectory": {"text": "I loved it"},
    "next_words": {"prompt": "The acting was", "k": 3},
    "generate": {"prompt": "The acting was", "max_new_tokens": 3, "temperature": 0.8, "top_k": 50, "top_p": 0.95,
                 "seed": 0},
    "surprisal": {"text": "I loved it"},
    "inspect": {"text": "not good", "kind": "sentiment", "layer": 0, "direction": "forward", "signal": "f",
                "order": "index", "unit": None, "units": "top", "view": "words"},
    "find_units": {"text": "not good", "kind": "sentiment", "layer": 0, "direction": "forward", "marked": "not",
                   "measure": "memory"},
    "export_trace": {"text": "not good", "kind": "sentiment", "fmt": "npz"},
}
# The words an error about each parameter must contain (the handlers' own names for them).
NAMES = {"text": ("text", "empty"), "prompt": ("prompt", "empty"), "method": ("method",), "k": ("k ",),
         "max_new_tokens": ("max_new_tokens",), "temperature": ("temperature",), "top_k": ("top_k",),
         "top_p": ("top_p",), "seed": ("seed",), "kind": ("model",), "layer": ("layer",), "direction": ("direction",),
         "signal": ("signal",), "order": ("order",), "unit": ("unit", "Unit"), "fmt": ("format",),
         "units": ("units",), "view": ("view",), "measure": ("measure",), "marked": ("marked", "words", "Mark")}

OK, ERROR, EITHER = "ok", "error", "either"
TEXT_CASES = [
    (None, ERROR), (5, ERROR), (3.5, ERROR), (True, ERROR), ([], ERROR), (["a"], ERROR), ({"a": 1}, ERROR),
    ("", ERROR), (" \n\t ", ERROR), ("good\x00movie\x07\x1b[31m red\x7f", OK), ("good \ud800 bad", OK),
    ("\udfff", OK), ("\ud83d\ude00 a pair of halves", OK), (HTML, OK), (MARKDOWN, OK),
    ("\u202eevil\u202c \u200b\ufeff", OK), ("🙂" * 3000, OK), (ONE_MB, OK),
]
NUMBER_CASES = [
    ("abc", ERROR), ("", ERROR), (None, ERROR), ([], ERROR), ([1], ERROR), ({"n": 1}, ERROR), (True, ERROR),
    (math.nan, ERROR), (math.inf, ERROR), (-math.inf, ERROR), ("1e400", ERROR), ("NaN", ERROR), (10**30, ERROR),
    (-(10**30), ERROR), (10**400, ERROR), ("9" * 5000, ERROR), (HTML, ERROR),
]
CHOICE_CASES = [("nope", ERROR), ("", ERROR), (None, ERROR), (5, ERROR), ([], ERROR), ({"a": 1}, ERROR),
                (HTML, ERROR), ("EVIDENCE", ERROR), ("forward ", ERROR)]
# Per numeric parameter: values inside its range given as strings or floats (accepted), and just outside (refused).
NUMBER_EXTRAS = {
    "k": [("3", OK), (" 4 ", OK), (5.0, OK), (0, ERROR), (limits.NEXT_WORDS.high, OK),
          (limits.NEXT_WORDS.high + 1, ERROR), (2.5, ERROR), (-1, ERROR)],
    "max_new_tokens": [("3", OK), (2.0, OK), (0, ERROR), (limits.MAX_NEW_TOKENS.high + 1, ERROR), (-5, ERROR)],
    "temperature": [("0.5", OK), (0, OK), (limits.TEMPERATURE.high, OK), (-0.1, ERROR),
                    (limits.TEMPERATURE.high + 0.01, ERROR), (5.5, ERROR)],
    "top_k": [("10", OK), (0, OK), (10**12, OK), (-1, ERROR), (1.5, ERROR)],
    "top_p": [("0.5", OK), (1, OK), (0, ERROR), (1.01, ERROR), (-1, ERROR)],
    "layer": [("0", OK), (0.0, OK), (1, ERROR), (-1, ERROR), (1.5, ERROR)],
}
SEED_CASES = [(2**64, OK), (2**70, OK), (-1, OK), (-(2**70), ERROR), (-2, ERROR), ("123", OK), (None, OK), ("", OK), (math.nan, OK),
              (5.0, OK), (math.inf, ERROR), ("abc", ERROR), (1.5, ERROR), ([1], ERROR), ({}, ERROR), (True, ERROR),
              ("1e400", ERROR)]
UNIT_CASES = [("seven", ERROR), ("1e400", ERROR), (math.inf, ERROR), (1.5, ERROR), (-1, ERROR), (10**30, ERROR),
              ([], ERROR), ({}, ERROR), (HTML, ERROR), (None, OK), ("", OK), (" 3 ", OK), (3.0, OK)]
# Accepted by design: a top-k over the whole vocabulary samples unfiltered; no layer means the last one.
ACCEPTED = {("top_k", 10**30), ("top_k", 10**400), ("layer", None)}
CHOICE_PARAMETERS = {"method", "kind", "direction", "signal", "order", "fmt", "units", "view", "measure"}
# The words to find units at must be words of the text.
MARKED_CASES = [(None, ERROR), (5, ERROR), ({"a": 1}, ERROR), ("", ERROR), (" ", ERROR), (HTML, ERROR),
                ("absent", ERROR), ("not good", ERROR), ("not", OK), ("good", OK), ("  good ", OK)]
TEXT_PARAMETERS = {"text", "prompt"}


def cases() -> list:
    table = []
    for endpoint, baseline in BASELINE.items():
        for name in baseline:
            if name in TEXT_PARAMETERS:
                values = TEXT_CASES
            elif name in CHOICE_PARAMETERS:
                values = CHOICE_CASES
            elif name == "seed":
                values = SEED_CASES
            elif name == "unit":
                values = UNIT_CASES
            elif name == "marked":
                values = MARKED_CASES
            else:
                values = NUMBER_CASES + NUMBER_EXTRAS[name]
            for index, (value, expected) in enumerate(values):
                if (value is None or type(value) is int) and (name, value) in ACCEPTED:
                    expected = OK
                if endpoint == "find_units" and name == "text" and expected == OK:
                    expected = EITHER  # fine either way: most of these texts lack the marked word, and are told so
                table.append(pytest.param(endpoint, name, value, expected, id=f"{endpoint}-{name}-{index}"))
    # Ten megabytes where it costs least (the page cuts texts to 100,000 characters before anything else).
    table += [pytest.param("classify", "text", TEN_MB, OK, id="classify-text-10MB"),
              pytest.param("surprisal", "text", TEN_MB, OK, id="surprisal-text-10MB")]
    return table


CASES = cases()


def test_the_table_is_large_and_covers_every_parameter():
    assert len(CASES) >= 200
    covered = {(case.values[0], case.values[1]) for case in CASES}
    assert covered == {(endpoint, name) for endpoint, baseline in BASELINE.items() for name in baseline}


@pytest.fixture(scope="module")
def demo(pipelines):
    return app.build_demo(*pipelines)


def call(demo, endpoint: str, args: dict):
    """The page's handler for `endpoint`, as gradio calls it for a script (raw values: preprocessing is off for
    it), without the page's message output (always "" when nothing is raised)."""
    [block_fn] = [f for f in demo.fns.values() if f.api_name == endpoint]
    assert block_fn.preprocess is False
    result = block_fn.fn(*args.values())
    if endpoint == "generate":
        steps = list(result)
        assert all(message == "" for _, message in steps)
        return [text for text, _ in steps]
    assert result[-1] == ""
    return result[:-1]


def check_message(message: str, name: str, value) -> None:
    assert any(word in message for word in NAMES[name]), message
    assert "Traceback" not in message and "Something went wrong" not in message, message
    assert "&#x27;" not in message and "&quot;" not in message and "&lt;" not in message, message  # not escaped
    assert "<" not in message and "pwned" not in message, message  # nothing of the value quoted
    assert len(message) < 300, message


@pytest.mark.parametrize("endpoint, name, value, expected", CASES)
def test_hostile_value(demo, endpoint, name, value, expected):
    args = {**BASELINE[endpoint], name: value}
    try:
        result = call(demo, endpoint, args)
    except gr.Error as error:
        assert expected != OK, f"refused: {error.message}"
        check_message(error.message, name, value)
        return
    assert expected != ERROR, f"accepted {name}={str(value)[:40]!r}"
    assert result is not None and (endpoint != "generate" or result)


def test_text_comes_back_as_valid_unicode(demo):
    """A lone surrogate becomes U+FFFD before the tokenizer sees it, and in what the page gets back."""
    [text] = call(demo, "generate", {**BASELINE["generate"], "prompt": "good \ud800 bad", "max_new_tokens": 1})[-1:]
    assert text.startswith("good \ufffd bad")
    text.encode("utf-8")
    _, words, *_ = call(demo, "classify", {**BASELINE["classify"], "text": "good \udfff bad"})
    assert "\ufffd" in words and "good" in words and "bad" in words  # the coloured words (HTML)
    words.encode("utf-8")


def test_large_seeds_are_brought_into_range(demo):
    """The same seed gives the same text: 2**64 + 7 samples as 7 does (-1 asks for a fresh random seed)."""
    def text(seed):
        return call(demo, "generate", {**BASELINE["generate"], "max_new_tokens": 8, "seed": seed})[-1]
    assert text(2**64 + 7) == text(7) == text("7")


# -- through the served page -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(demo):
    url = serve_locally(demo, **app.launch_options())
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


def raw_call(url: str, endpoint: str, body: str) -> tuple[str, object]:
    """POSTs `body` (JSON text as written: NaN, 1e400 and "\\ud800" escapes included) to gradio's REST API and
    reads the event stream: ("complete", outputs) or ("error", message)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        posted = http.post(f"/gradio_api/call/{endpoint}", content=body, headers={"content-type": "application/json"})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        event = data = None
        with http.stream("GET", f"/gradio_api/call/{endpoint}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line.split(":", 1)[1])
                    if event == "error" and isinstance(data, dict):  # {"error": message, "title": ...}
                        data = data["error"]
                    break
    return event, data


RAW_CASES = [  # (endpoint, the JSON "data" as written, what an error must name, or None for a result)
    ("next_words", '["The acting was", "4"]', None),
    ("next_words", '["The acting was", NaN]', "k must be a whole number"),
    ("next_words", '["The acting was", 1e400]', "k must be a whole number"),
    ("next_words", '["The acting was", null]', "k must be a whole number"),
    ("next_words", '["The acting was", [5]]', "k must be a whole number"),
    ("generate", '["The acting was", "3", "0.5", "10", "0.9", 18446744073709551621]', None),
    ("generate", '["The acting was", 3, 0.8, 50, "0.5x", 0]', "top_p must be a number"),
    ("generate", '["The acting was", -Infinity, 0.8, 50, 0.9, 0]', "max_new_tokens must be a whole number"),
    ("classify", '["good \\ud800 bad", "evidence"]', None),
    ("classify", '["I loved it", "<b>evidence</b>"]', "method must be one of: integrated_gradients, evidence."),
    ("surprisal", '["\\udfff\\u0000\\u001b[31m"]', None),
    ("inspect", '["not good", "sentiment", "abc", "forward", "f", "index", null, "top", "words"]',
     "layer must be a whole number"),
    ("inspect", '["not good", "lstm", 0, "forward", "f", "index", null, "top", "words"]', "model must be one of"),
    ("export_trace", '["not good", "sentiment", "pickle"]', "format must be one of: json, npz."),
    ("trajectory", "[]", "didn't receive enough input values"),
    ("classify", "[]", "didn't receive enough input values"),
]


def test_raw_requests_get_a_clear_answer_and_the_server_keeps_answering(served, pipelines):
    for endpoint, data, says in RAW_CASES:
        event, payload = raw_call(served, endpoint, f'{{"data": {data}}}')
        if says is None:
            assert event == "complete", (endpoint, data, payload)
        else:
            assert event == "error" and says in payload, (endpoint, data, payload)
            assert "&#x27;" not in payload and "&lt;" not in payload
    # Still serving, and right: the same answer as the library's.
    event, payload = raw_call(served, "next_words", '{"data": ["The acting was", 3]}')
    assert event == "complete"
    expected = pipelines[1].next_words("The acting was", k=3)
    assert [c["label"] for c in payload[0]["confidences"]] == [word for word, _ in expected]


def test_gradio_client_gets_the_messages(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served + "/", verbose=False, analytics_enabled=False)
    words, _ = client.predict("The acting was", "5", api_name="/next_words")
    assert len(words["confidences"]) == 5
    for args, api_name, says in [
        (("The acting was", 5, 0.8, 50, 0.95, "seven"), "/generate", "seed must be a whole number"),
        (("The acting was", "many", 0.8, 50, 0.95, 0), "/generate", "max_new_tokens must be a whole number"),
        (("I loved it", "nextword", 0, "forward", "f", "index", "1e400"), "/inspect", "unit must be a whole number"),
    ]:
        with pytest.raises(AppError) as raised:
            client.predict(*args, api_name=api_name)
        assert says in str(raised.value), str(raised.value)
    assert client.predict("I loved it", "evidence", api_name="/classify")[0]["label"]


def test_error_messages_keep_their_quotes_and_lose_their_tags():
    """API callers read a message as written; the page shows it as HTML, so a tag in it is escaped."""
    def refuses(message):
        def handler():
            raise InputError(message)
        return endpoints.endpoint(handler, inputs=0, outputs=1)

    with pytest.raises(gr.Error) as raised:
        refuses('the "layer" isn\'t there')()
    assert raised.value.message == 'the "layer" isn\'t there'
    with pytest.raises(gr.Error) as raised:
        refuses("no <b>tags</b> here")()
    assert "<b>" not in raised.value.message and "tags" in raised.value.message


def test_no_call_skips_the_queue(served):
    """The REST route that answers directly (/run) is closed; the queued one (/call) answers."""
    with httpx.Client(base_url=served, timeout=60) as http:
        direct = http.post("/gradio_api/run/classify", json={"data": ["I loved it", "evidence"]})
        assert direct.status_code == 404 and "join the queue" in direct.text
    event, payload = raw_call(served, "classify", '{"data": ["I loved it", "evidence"]}')
    assert event == "complete" and payload[0]["label"]
