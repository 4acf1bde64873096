"""In the browser: a number typed outside a Next-word slider's range gets its note beside the slider, naming what
the box now holds; the run uses that value; a valid value clears the note."""

from __future__ import annotations

import pytest
from conftest import open_page, open_tab, shot, wait_for_text, wait_idle



@pytest.mark.parametrize("width", [1280, 390])
def test_a_typed_k_outside_the_range_is_named_beside_the_slider(browser, url, width):
    context, page = open_page(browser, url, width)
    try:
        wait_idle(page)
        open_tab(page, "Next word")
        box = page.locator("#nextword-k input[type=number]")
        box.fill("0")
        box.press("Tab")  # the box loses focus: gradio's slider clamps it, the page says so
        wait_for_text(page, "#nextword-k-note", "k must be a whole number from 1 to 20; the box now holds 1.")
        assert box.input_value() == "1"
        wait_idle(page)
        page.click("#nextword-button")
        wait_idle(page)
        wait_for_text(page, "#nextword-notes", "These 1 words")  # the run used what the box holds
        shot(page, f"honesty-k-note-{width}")
        box.fill("4")
        box.press("Tab")
        page.wait_for_function("() => document.querySelector('#nextword-k-note').innerText.trim() === ''")
    finally:
        context.close()
