"""haft's Explorer in a real browser: Debian's Chromium, driven by Playwright.

Run by tests/explorer.rs, which starts `haft explore two-phase -p
participants=2` and passes: the haft binary, the Explorer's URL, Chromium's
path, and a directory for the browser's profile and a failure screenshot.

What `haft check` prints is the reference: the page must list the same
properties with the same verdicts, and the counterexample it opens must be the
checker's, step for step, ending in a state that violates the property.
"""

import json
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

HAFT, URL, CHROMIUM, WORK = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
# Generous: CI machines are loaded.
TIMEOUT_MS = 120_000
VARIANT = ["-p", "participants=2", "-p", "variant=forget-too-early"]


def check(*params):
    """`haft check two-phase PARAMS --json`: the report, as a dict."""
    run = subprocess.run(
        [HAFT, "check", "two-phase", *params, "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode in (0, 1), f"haft check failed: {run.stderr}"
    return json.loads(run.stdout.splitlines()[0])


def messages(actions):
    """The labels of the deliveries among `actions` (`src → msg → dst`)."""
    return [parts[1] for parts in (a.split(" → ") for a in actions) if len(parts) == 3]


def expect_properties(page, report):
    """The page lists the report's properties, in order, with its verdicts."""
    expect(page.locator("#check-status")).to_have_attribute("data-state", "done")
    rows = page.locator("#properties tr.property")
    names = [p["name"] for p in report["properties"]]
    expect(rows).to_have_count(len(names))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.name)") == names
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.status)") == [
        p["status"] for p in report["properties"]
    ]
    assert any(n.startswith("refines ") for n in names), names


def follow_counterexample(page, report, name):
    """Clicks `name`'s counterexample link and checks the path it opens."""
    steps = next(p for p in report["properties"] if p["name"] == name)["counterexample"]
    page.locator(f'tr.property[data-name="{name}"] a.counterexample').click()
    path = page.locator("#path li")
    expect(path).to_have_count(len(steps))
    # The last step's action may carry the checker's note on a refused
    # transition; the page shows the action alone.
    shown = path.all_inner_texts()
    assert all(s["action"].startswith(a) for s, a in zip(steps, shown)), (shown, steps)
    here = page.locator(f'#here tr[data-name="{name}"]')
    expect(here).to_have_attribute("data-holds", "false")
    final = json.loads(page.locator("#state").text_content())
    assert final == steps[-1]["state"], "the page's last state is not the checker's"
    return [s["action"] for s in steps], here


def main():
    correct, buggy = check("-p", "participants=2"), check(*VARIANT)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(WORK / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
            ],
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(URL)
            # The model by its name, not its Rust type.
            expect(page.locator("#model-name")).to_have_text("two-phase")
            assert "<" not in page.title() and "<" not in page.locator("h1").inner_text()
            expect_properties(page, correct)

            # The seeded bug, loaded from the page's form.
            page.select_option('#param-fields select[name="variant"]', "forget-too-early")
            page.locator('#model-form button[type="submit"]').click()
            expect(page.locator("#model-params")).to_contain_text("variant=forget-too-early")
            expect_properties(page, buggy)

            actions, _ = follow_counterexample(page, buggy, "AC1 agreement")
            expected = messages(actions)
            assert expected, "the counterexample delivers messages"
            arrows = page.locator("#sequence svg g.message")
            expect(arrows).to_have_count(len(expected))
            titles = arrows.evaluate_all("gs => gs.map(g => g.querySelector('title').textContent)")
            assert [t.split(". ", 1)[1] for t in titles] == expected, titles

            # One step back, the property holds again.
            page.locator("#back").click()
            expect(page.locator("#path li")).to_have_count(len(actions) - 1)
            here = page.locator('#here tr[data-name="AC1 agreement"]')
            expect(here).to_have_attribute("data-holds", "true")

            page.go_back()
            page.go_back()
            _, here = follow_counterexample(page, buggy, "refines TwoPhase")
            expect(here).to_contain_text("is no step of the spec")

            # A path that leads nowhere is a clear error on the page.
            page.goto(URL + "#/two-phase/path/0/999?participants=2")
            expect(page.locator("#error")).to_contain_text("step 1 of the path chooses 999")
            page.goto(URL + "#/no-such-model")
            expect(page.locator("#error")).to_contain_text("there is no model `no-such-model`")
            assert not errors, f"JavaScript errors: {errors}"
        except BaseException:
            shot = WORK / "explorer-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"the page at failure: {page.url}, screenshot {shot}", file=sys.stderr)
            raise
        finally:
            context.close()
    print(
        f"explorer: {len(correct['properties'])} properties shown, "
        f"counterexample of {len(actions) - 1} steps followed, {len(expected)} messages drawn"
    )


if __name__ == "__main__":
    main()
