"""The page in a real browser (Playwright driving Debian's chromium): each tab is used as a person uses it, the
outputs must appear, typed HTML and script must stay text, and errors must read as a sentence. Screenshots of
every step land in screenshots/ (git-ignored: the folder ignores itself), or in $SEQDEMO_SCREENSHOTS.

Skipped when there is no browser, except in CI (CI=true), where a missing browser fails the run.
Set SEQDEMO_BROWSER_CHECKPOINTS=1 to serve the real checkpoints (seqdemo.load) instead of the tiny models.
"""

from __future__ import annotations

import os

import pytest
from conftest import (
    IDLE,
    PAYLOAD,
    assert_inert,
    open_page,
    open_tab,
    shot,
    tiny_pipelines,
    wait_for_text,
    wait_idle,
)


@pytest.fixture(scope="module")
def pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword):
    if os.environ.get("SEQDEMO_BROWSER_CHECKPOINTS") == "1":
        import seqdemo

        return seqdemo.load("sentiment"), seqdemo.load("nextword")
    return tiny_pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword)


@pytest.fixture(scope="module")
def page(browser, url):
    context, page = open_page(browser, url, 1280)
    yield page
    context.close()


def chips(page, selector: str) -> list[str]:
    """The words of a coloured text, one per chip, as the page shows them."""
    return page.locator(f"{selector} .sq-chip").all_inner_texts()


def wait_for_chips(page, selector: str, words: list[str]) -> None:
    """Waits until the coloured text shows exactly these chips."""
    page.wait_for_function(
        """([selector, words]) => {
            const shown = [...document.querySelectorAll(selector + " .sq-chip")].map(c => c.textContent);
            return JSON.stringify(shown) === JSON.stringify(words);
        }""",
        arg=[selector, words],
    )


def words_of(pipelines, text: str) -> list[str]:
    """The chips a text should show: its words as the tokenizer groups them, as the page writes them."""
    from seqdemo.web import presentation as show

    tokenizer = pipelines[0].tokenizer
    ids = tokenizer.encode(text)
    return [show.shown(w.text) for w in show.word_spans(tokenizer, ids, [0.0] * len(ids))]


def press_enter_in(page, selector: str, text: str) -> None:
    page.fill(selector, text)
    page.press(selector, "Enter")


def no_toast(page) -> None:
    assert page.locator("[data-testid='toast-body']").count() == 0


def no_message(page, *boxes: str) -> None:
    """Waits until no event runs and these message boxes hold no words. An error message stays until its control
    runs again, so this is the final state; one read right after an idle moment could catch a chained event's
    status text ("queue: 1/1 | 0.9s"), and a timer ("0.1s") is no message."""
    quiet = "boxes => boxes.every(box => !/[A-Za-z]{2}/.test(document.querySelector(box)?.innerText ?? ''))"
    page.wait_for_function(f"boxes => ({IDLE})() && ({quiet})(boxes)", arg=list(boxes))


TABS = {"sentiment": "Sentiment", "nextword": "Next word", "gates": "Gate inspector"}


ARRIVALS = {  # what each tab shows, computed as the page opened
    "sentiment": ["#sentiment-label [data-testid='label-output-value']", "#sentiment-highlight .sq-chip",
                  "#sentiment-trajectory .js-plotly-plot .scatterlayer path"],
    "nextword": ["#nextword-label [data-testid='label-output-value']", "#surprisal-highlight .sq-chip"],
    "gates": ["#gates-heatmap .js-plotly-plot .heatmaplayer image", "#gates-unit-text .sq-chip",
              "#gates-unit-chart .js-plotly-plot .scatterlayer path", "#gates-found [data-testid='cell-0-0']"],
}


def wait_for_arrival(page, tab: str) -> None:
    """The tab's worked example, computed as the page opened (no click)."""
    open_tab(page, TABS[tab])
    for selector in ARRIVALS[tab]:
        page.wait_for_selector(selector, state="attached")


def test_every_tab_shows_results_on_arrival(page):
    for tab in TABS:
        wait_for_arrival(page, tab)
        shot(page, f"{tab}-1280")
    open_tab(page, TABS["sentiment"])
    assert page.locator("#sentiment-summary").inner_text().startswith("The model reads this text as")
    assert page.locator("#sentiment-table [data-testid='cell-0-0']").count() == 1
    no_toast(page)


def test_about_the_models_is_collapsed_and_names_the_device(page):
    assert not page.locator("#device-line").is_visible()
    page.get_by_text("About the models").click()
    header = page.locator("#device-line").inner_text()
    assert "Running on" in header and ("CPU" in header or "GPU" in header or "NVIDIA" in header)
    assert "sentiment weights" in header and "next-word weights" in header
    page.get_by_text("About the models").click()


def test_enter_submits_and_shift_enter_makes_a_new_line(page, pipelines):
    open_tab(page, TABS["sentiment"])
    press_enter_in(page, "#sentiment-text textarea", "I loved it")
    wait_for_chips(page, "#sentiment-highlight", words_of(pipelines, "I loved it"))
    assert page.locator("#sentiment-text textarea").input_value() == "I loved it"  # Enter added no line
    page.press("#sentiment-text textarea", "Shift+Enter")
    page.keyboard.type("So good")
    assert page.locator("#sentiment-text textarea").input_value() == "I loved it\nSo good"


def test_an_example_click_runs_it(page, pipelines):
    open_tab(page, TABS["sentiment"])
    page.fill("#sentiment-text textarea", "I loved it")
    page.locator("#sentiment-text").locator("xpath=../..").get_by_text("not good at all", exact=True).first.click()
    wait_for_chips(page, "#sentiment-highlight", words_of(pipelines, "not good at all"))
    shot(page, "sentiment-example")


def test_an_inspector_example_without_the_marked_word_clears_the_finder_and_says_why(page):
    """The word box still holds "not": an example without it clears the found units with one line, and no
    error appears about a box the visitor did not touch; the heatmap follows the new text."""
    open_tab(page, TABS["gates"])
    press_enter_in(page, "#gates-text textarea", "not good at all")
    wait_for_text(page, "#gates-found-note", "at the marked words")
    wait_idle(page)  # the submitted text's own events are done before the example's start
    page.locator("#gates-text").locator("xpath=../..").get_by_text("I loved it", exact=True).first.click()
    wait_for_text(page, "#gates-found-note", "not in this text")
    wait_for_text(page, "#gates-unit-text", "loved")
    no_message(page, "#gates-find-error", "#gates-error")
    no_toast(page)
    shot(page, "gates-example-clears-finder")


def test_switching_the_model_refreshes_the_finders_note(page, pipelines):
    """The finder's note speaks of the model on show: after a switch to the next-word model (one direction) it
    names that model's layer and no direction, as the classifier's note did before."""
    sentiment_last, nextword_last = (pipe.model.rnn.num_layers - 1 for pipe in pipelines)
    assert pipelines[0].model.rnn.bidirectional and not pipelines[1].model.rnn.bidirectional
    open_tab(page, TABS["gates"])
    wait_idle(page)
    page.fill("#gates-marked input", "not")  # no Enter: the text's own run reads the box
    press_enter_in(page, "#gates-text textarea", "not good at all")
    wait_for_text(page, "#gates-found-note", f"In layer {sentiment_last}, forward, these units")
    wait_idle(page)
    page.locator("#gates-model input").click()
    page.get_by_role("option", name="Next word: 3-layer LSTM").click()
    wait_for_text(page, "#gates-found-note", f"In layer {nextword_last}, these units")
    no_message(page, "#gates-find-error")
    note = page.locator("#gates-found-note").inner_text()
    assert "forward" not in note and "backward" not in note
    no_toast(page)
    shot(page, "gates-switched-model")
    page.locator("#gates-model input").click()  # back to the classifier, where the next tests expect it
    page.get_by_role("option", name="Sentiment: bidirectional LSTM classifier").click()
    wait_for_text(page, "#gates-found-note", f"In layer {sentiment_last}, forward, these units")
    wait_idle(page)


def test_a_word_of_several_pieces_is_one_chip(page, pipelines):
    tokenizer = pipelines[0].tokenizer
    text = "A modest, grinning film.\n\nBeautifully done"
    assert len(tokenizer.encode(" grinning")) > 1 and len(tokenizer.encode(" Beautifully")) > 1  # really pieces
    open_tab(page, TABS["sentiment"])
    press_enter_in(page, "#sentiment-text textarea", text)
    wait_for_text(page, "#sentiment-highlight", "grinning")
    shown = chips(page, "#sentiment-highlight")
    assert "grinning" in shown and "Beautifully" in shown
    assert "¶¶" in shown  # the paragraph break, visible
    # Whitespace is never ranked above a word among the strongest pushes.
    ranked = page.evaluate("() => [...document.querySelectorAll('#sentiment-table [data-testid^=\"cell-\"]')]"
                           ".filter(c => c.dataset.testid.endsWith('-0')).map(c => c.innerText.trim())")
    assert ranked and all(not (ranked[n] == "¶¶" and ranked[n + 1] != "¶¶") for n in range(len(ranked) - 1))
    shot(page, "sentiment-words")


def test_the_inspector_shows_characters_not_bytes(page):
    open_tab(page, TABS["gates"])
    text = "这部电影 good 🙂"
    press_enter_in(page, "#gates-text textarea", text)
    wait_for_text(page, "#gates-unit-text", "这部电影")
    shown = chips(page, "#gates-unit-text")
    assert "这" in shown and "🙂" in shown and not any("<0x" in chip for chip in shown)
    labels = page.evaluate("() => [...document.querySelectorAll('#gates-heatmap .ytick text')].map(t => t.textContent)")
    assert any("这" in label for label in labels) and not any("<0x" in label for label in labels)
    # The pieces the LSTM reads are one click away.
    page.locator("#gates-view").get_by_text("pieces").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gates-heatmap .ytick text')].some(t => t.textContent.includes('<0x'))")
    shot(page, "gates-pieces")
    page.locator("#gates-view").get_by_text("words", exact=True).click()


def test_a_bad_unit_shows_one_message_and_the_heatmap_stays(page):
    open_tab(page, TABS["gates"])
    press_enter_in(page, "#gates-text textarea", "not good at all")
    wait_for_text(page, "#gates-unit-text", "not")
    heatmap = page.locator("#gates-heatmap .heatmaplayer image").get_attribute("href")
    press_enter_in(page, "#gates-unit input", "999")
    page.locator("#gates-heatmap").click()  # the box loses focus: a second chance to complain
    page.wait_for_function("() => document.querySelector('#gates-error')?.innerText.includes('Units run from 0')")
    wait_idle(page)  # the blur's run too has answered
    assert page.locator("#gates-error").inner_text().count("Units run from 0") == 1
    no_toast(page)
    assert page.locator("#gates-heatmap .heatmaplayer image").get_attribute("href") == heatmap
    assert page.locator("#gates-unit-text .sq-chip").count() > 0
    shot(page, "gates-bad-unit")
    page.fill("#gates-unit input", "")
    page.press("#gates-unit input", "Enter")
    page.wait_for_function("() => !document.querySelector('#gates-error')?.innerText.trim()")


def test_an_empty_text_says_so_beside_the_box_and_keeps_the_results(page):
    open_tab(page, TABS["sentiment"])
    before = chips(page, "#sentiment-highlight")
    press_enter_in(page, "#sentiment-text textarea", "   ")
    page.wait_for_function("() => document.querySelector('#sentiment-error')?.innerText.includes('empty')")
    assert chips(page, "#sentiment-highlight") == before and before
    assert "Traceback" not in page.content()
    no_toast(page)
    shot(page, "sentiment-error")


def test_a_stale_download_disappears(page):
    open_tab(page, TABS["gates"])
    page.get_by_text("Download every value of this trace").click()
    page.click("#gates-export-button")
    page.wait_for_selector("#gates-file a")
    assert "seqdemo-gates-sentiment" in page.locator("#gates-file").inner_text()
    page.locator("#gates-text textarea").press_sequentially("!")
    page.wait_for_selector("#gates-file a", state="detached")
    page.click("#gates-export-button")
    page.wait_for_selector("#gates-file a")
    page.locator("#gates-model input").click()
    page.get_by_role("option", name="Next word: 3-layer LSTM").click()
    page.wait_for_selector("#gates-file a", state="detached")
    # The layer choices follow the model (a server round trip after the download went).
    page.wait_for_function("document.querySelectorAll('#gates-layer input[type=radio]').length == 3")
    assert not page.locator("#gates-direction").is_visible()
    page.get_by_text("Download every value of this trace").click()


def test_find_units_leads_to_a_units_line_chart(page):
    open_tab(page, TABS["gates"])
    press_enter_in(page, "#gates-text textarea", "not good at all")
    wait_for_text(page, "#gates-found-note", "at the marked words")  # the text's own ranking, before the next
    wait_idle(page)  # the submitted text's own refresh of the finder has run (it reads the word box when it runs)
    # Words that are not in the text: one message, and the last ranking stays. The message also says that every
    # earlier request has been answered (one model queue, in order), so the next results are this test's own.
    press_enter_in(page, "#gates-marked input", "nowhere to be found")
    page.wait_for_function("() => document.querySelector('#gates-find-error')?.innerText.includes('not in the text')")
    # The table may redraw as the message arrives: wait (up to the usual timeout) for the kept ranking's first cell.
    page.locator("#gates-found [data-testid='cell-0-0']").wait_for(state="visible")
    press_enter_in(page, "#gates-marked input", "not")
    page.wait_for_function("() => document.querySelector('#gates-find-error')?.innerText.trim() === ''")
    wait_for_text(page, "#gates-found-note", "at the marked")
    second = page.locator("#gates-found [data-testid='cell-1-0']")
    unit = second.inner_text().strip()
    second.click()
    page.wait_for_function("(u) => document.querySelector('#gates-unit input')?.value === u", arg=unit)
    page.wait_for_function(
        "(u) => [...document.querySelectorAll('#gates-unit-chart .gtitle')].some(t => t.textContent.startsWith('Unit ' + u + ' '))",
        arg=unit)
    shot(page, "gates-find")


def test_generation_shows_its_seed_and_the_greedy_text(page):
    open_tab(page, TABS["nextword"])
    page.fill("#nextword-text textarea", "The acting was")
    page.fill("#generate-seed input", "")
    page.locator("#generate-greedy").get_by_role("checkbox").check()
    page.click("#generate-button")
    # The greedy text comes with this run's last update (the page's own first run had none); the note says the
    # seed while the text streams, and how to get the text again once it is complete.
    page.wait_for_function("() => document.querySelector('#generate-greedy-output textarea')?.value.length > 0")
    page.wait_for_function("() => document.querySelector('#generate-seed-note')?.innerText.includes('this very text')")
    seed = page.locator("#generate-seed-note").inner_text().split("Seed")[1].split(":")[0].strip()
    first = page.locator("#generate-output textarea").input_value()
    assert first.startswith("The acting was") and seed.isdigit()
    assert page.locator("#generate-greedy-output textarea").input_value().startswith("The acting was")
    # The seed shown gives the very same text again (after another seed's text, so the text must come back).
    for again in ("1", seed):
        page.fill("#generate-seed input", again)
        page.click("#generate-button")
        page.wait_for_function(  # a click while the text still streams would be ignored: wait for its end
            "(s) => document.querySelector('#generate-seed-note')?.innerText.startsWith('Seed ' + s + ': type')",
            arg=again)
    page.wait_for_function("(t) => document.querySelector('#generate-output textarea')?.value === t", arg=first)
    shot(page, "nextword-generate")


def test_typed_html_stays_text(page):
    open_tab(page, TABS["sentiment"])
    press_enter_in(page, "#sentiment-text textarea", PAYLOAD)
    wait_for_text(page, "#sentiment-highlight", "onerror")
    open_tab(page, TABS["nextword"])
    press_enter_in(page, "#surprisal-text textarea", PAYLOAD)
    wait_for_text(page, "#surprisal-highlight", "onerror")
    open_tab(page, TABS["gates"])
    press_enter_in(page, "#gates-text textarea", PAYLOAD)
    wait_for_text(page, "#gates-unit-text", "onerror")
    page.hover("#gates-heatmap .js-plotly-plot .nsewdrag")  # a hover label with a word in it
    page.wait_for_selector("#gates-heatmap .hoverlayer .hovertext")
    assert_inert(page)


def test_the_sentiment_trajectory_of_a_long_review_says_its_points_are_spaced(page, pipelines):
    """A review of more than 64 words is drawn at 64 evenly spaced word ends, and the chart's title says so."""
    text = " ".join(["The plot was thin but the acting saved it, and I loved it."] * 12)
    words = len(words_of(pipelines, text))
    open_tab(page, TABS["sentiment"])
    press_enter_in(page, "#sentiment-text textarea", text)
    page.wait_for_function(
        "note => document.querySelector('#sentiment-trajectory .gtitle')?.textContent.includes(note)",
        arg=f"64 of {words} word ends, evenly spaced; each point exact")
    assert page.locator("#sentiment-trajectory .scatterlayer .point").count() == 64
    # No message beside the box once every event is done (while one runs, the box shows only its timer).
    page.wait_for_function("() => !/[A-Za-z]/.test(document.querySelector('#sentiment-error').innerText)")
    shot(page, "sentiment-trajectory-spaced")


def test_phone_width_has_no_horizontal_scroll(browser, url):
    context, page = open_page(browser, url, 390, 844)
    try:
        for name in TABS:
            wait_for_arrival(page, name)
            width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (name, width)
            shot(page, f"{name}-390")
    finally:
        context.close()
