"""The search page in the real headless browser (Debian's chromium through selenium): type a
query, see the expected top hit with its matched tokens highlighted, hover a query token to see
its match and similarity, pick each search mode and see its ranking and scores. A screenshot is
saved ($COLMAX_SCREENSHOT, else the test's tmp_path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from colmax.index import Index
from serving import API_KEY, QUESTION

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 30  # seconds, for any one thing to appear


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def wait_for(browser, css):
    return WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.CSS_SELECTOR, css))


def search(browser, query):
    old = browser.find_elements(By.CSS_SELECTOR, "#results .hit")
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys(query + "\n")
    if old:  # the new results replace the old ones
        WebDriverWait(browser, WAIT).until(staleness_of(old[0]))
    return wait_for(browser, "#results .hit")


def test_search_page(browser, server, demo_path, tmp_path):
    browser.get(server.url + "/")
    options = wait_for(browser, "#index option")
    assert [o.get_attribute("value") for o in options] == ["demo", "scratch"]
    assert browser.find_element(By.ID, "key-form").is_displayed() is False
    hits = search(browser, QUESTION)
    assert len(hits) == 10
    top = hits[0]
    assert top.get_attribute("data-id") == "capital-france"
    assert top.find_element(By.CSS_SELECTOR, ".text").text == "Paris is the capital of France."
    marked = [m.text for m in top.find_elements(By.CSS_SELECTOR, ".text mark")]
    assert {"capital", "France"} <= set(marked)  # the tokens query tokens matched best
    assert "Paris" not in marked

    chip = next(c for c in top.find_elements(By.CSS_SELECTOR, ".qtok") if c.text == "capital")
    ActionChains(browser).move_to_element(chip).perform()
    tooltip = browser.find_element(By.ID, "tooltip")
    WebDriverWait(browser, WAIT).until(lambda b: tooltip.is_displayed())
    similarity = float(chip.get_attribute("data-similarity"))
    assert 0.5 < similarity <= 1.0
    assert tooltip.text.startswith("capital → capital") and f"{similarity:.4f}" in tooltip.text
    active = top.find_elements(By.CSS_SELECTOR, ".text mark.active")
    assert [m.text for m in active] == ["capital"]

    target = Path(os.environ.get("COLMAX_SCREENSHOT") or tmp_path / "search-page.png")
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000

    # the mode picker: each mode's ranking and scores as Index.search gives them, both sides' scores
    # shown for hybrid hits, the keyword terms each explanation matched
    with Index.open(demo_path) as local:
        for mode in ("keyword", "semantic", "hybrid"):
            Select(browser.find_element(By.ID, "mode")).select_by_value(mode)
            hits = search(browser, QUESTION)
            want = local.search(QUESTION, k=10, mode=mode)
            assert [h.get_attribute("data-id") for h in hits] == [h.id for h in want]
            score = hits[0].find_element(By.CSS_SELECTOR, ".score")
            assert score.text == f"{want[0].score:.4f}"
            parts = hits[0].find_element(By.CSS_SELECTOR, ".parts").text
            sides = [
                (n, v) for n, v in (("semantic", want[0].semantic_score), ("keyword", want[0].keyword_score))
            ]
            assert parts == " · ".join(f"{n} {v:.3f}" for n, v in sides if v is not None)
            assert (
                score.get_attribute("title")
                == {
                    "keyword": "BM25 score (keyword)",
                    "semantic": "MaxSim score (semantic)",
                    "hybrid": "fused score (hybrid)",
                }[mode]
            )
            terms = hits[0].find_element(By.CSS_SELECTOR, ".terms").text
            assert terms == "keyword terms matched: " + ", ".join(
                local.explain(QUESTION, want[0].id).keyword_terms
            )
            assert f"{mode} search" in browser.find_element(By.ID, "status").text
            assert f"mode={mode}" in browser.current_url
    assert "semantic" in parts and "keyword" in parts  # the hybrid top hit shows both sides

    # the other index, by the picker; an error is shown, not thrown
    ActionChains(browser).move_by_offset(0, 300).perform()
    browser.find_element(By.CSS_SELECTOR, "#index option[value=scratch]").click()
    assert search(browser, "tallest mountain")[0].get_attribute("data-id") == "everest"
    browser.execute_script("document.getElementById('query').value = 'x'.repeat(5000)")  # typing is slow
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, WAIT).until(lambda b: "characters" in b.find_element(By.ID, "status").text)
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")


def test_search_page_asks_for_the_key(browser, keyed_server):
    browser.get(keyed_server.url + "/")
    WebDriverWait(browser, WAIT).until(lambda b: b.find_element(By.ID, "key-form").is_displayed())
    browser.find_element(By.ID, "api-key").send_keys(API_KEY + "\n")
    wait_for(browser, "#index option")
    assert search(browser, QUESTION)[0].get_attribute("data-id") == "capital-france"
