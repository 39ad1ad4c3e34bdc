"""Keypress -> next card visible on the screening page, in Chromium, on the web_speed review.

Needs the review built by bench/web_speed.py and a server on it, e.g.:

    DEBUG=true DATABASE_URL=postgres://127.0.0.1:5432/sieve_speed_decide .venv/bin/python manage.py runserver 127.0.0.1:8799 --noreload &
    .venv/bin/python bench/decide_browser.py --user reviewer17 --decisions 40 [--base http://127.0.0.1:8799]

Presses "e" (exclude) on ``--decisions`` cards, each after the previous answer is in, and prints
the time from the keypress to the next card on screen (measured in the page), and the decide
POSTs' durations (the browser's resource timings). With the prefetched card the first needs no
request; on a page without it (an older Sieve) both figures are the POST's.
"""

import argparse
import statistics

from playwright.sync_api import sync_playwright
from web_speed import PASSWORD, SLUG

SHOWN = "() => { const f = document.querySelector('#card form.decision-form'); return f && f.getAttribute('action'); }"
WATCH = """() => {
  window.timings = [];
  const shown = () => { const f = document.querySelector('#card form.decision-form'); return f && f.getAttribute('action'); };
  document.addEventListener('keydown', () => { window.t0 = performance.now(); window.from = shown(); }, true);
  new MutationObserver(() => {
    if (window.t0 && shown() && shown() !== window.from) { window.timings.push(performance.now() - window.t0); window.t0 = null; }
  }).observe(document.querySelector('main'), {childList: true});
}"""


def figures(values):
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"p50 {statistics.median(values):7.1f} ms  p95 {p95:7.1f} ms  max {values[-1]:7.1f} ms  (n={len(values)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8799")
    parser.add_argument("--user", default="reviewer17")
    parser.add_argument("--decisions", type=int, default=40)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(args.base + "/accounts/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state()
        page.goto(f"{args.base}/r/{SLUG}/screen/title_abstract/")
        page.wait_for_selector("#card[data-ready]")
        page.evaluate(WATCH)
        for _ in range(args.decisions):
            before = page.evaluate(SHOWN)
            page.keyboard.press("e")
            page.wait_for_function(f"b => ({SHOWN})() !== b", arg=before)
            # The answer is in: the card's progress bar is fetched after it.
            page.wait_for_selector("#card[data-ready] .screen-progress progress[value]")
        shown = page.evaluate("window.timings")
        posts = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/decide/')).map(e => e.duration)"
        )
        browser.close()
    print(f"keypress -> next card visible  {figures(shown)}")
    print(f"decide POST (browser)          {figures(posts)}")
    print(
        f"Reproduce: .venv/bin/python bench/decide_browser.py --base {args.base} --user {args.user} "
        f"--decisions {args.decisions}"
    )


if __name__ == "__main__":
    main()
