"""The ETL view in a real browser: log in, watch an example DAG's job run, follow the task's link.

One api-server and one run of ``example_ais_etl_offline`` (a slowed-down transform) serve every
test here; they run in this order on one worker. Screenshots go to ``test-results/screenshots``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from pathlib import Path

    from tests.ui.conftest import Site

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ui-browser")]

DAG_ID = "example_ais_etl_offline"
ETL = "example-offline"
JOB_TIMEOUT_MS = 180_000
NUM_OBJECTS = 400


@pytest.fixture(scope="module")
def dag_run(site: Site) -> dict[str, Any]:
    """Start the example DAG (``airflow dags test``) once the api-server answers (so the browser is
    there when the job starts): 400 objects at 100 ms each on 2 targets keep its transform ~20 s."""
    site.wait_ready()
    conf = {
        "src": str(site.root / "src"),
        "dst": str(site.root / "dst"),
        "num_objects": NUM_OBJECTS,
        "delay_ms": 100,
        "num_workers": 1,
    }
    proc = site.start("dag-test", "dags", "test", DAG_ID, "-c", json.dumps(conf))
    return {"proc": proc, "conf": conf}


def _login(page: Any, site: Site, user: str) -> None:
    page.goto(f"{site.url}/auth/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", site.passwords[user])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)


def _frame(page: Any) -> Any:
    """Return the frame in which Airflow's UI shows the plugin's view."""
    frame = page.wait_for_selector("iframe[src*='/ais-etl/']", timeout=60_000).content_frame()
    assert frame is not None
    return frame


def _done(page: Any, selector: str) -> int:
    return int(page.get_attribute(selector, "data-done") or 0)


def test_a_user_watches_the_running_job_and_follows_the_task_link(
    site: Site, dag_run: dict[str, Any], chromium: Any, screenshots: Path
) -> None:
    site.wait_ready()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    _login(page, site, "admin")
    # the "AIS ETL" entry of Airflow's navigation shows the view in a frame
    page.goto(f"{site.url}/plugin/ais-etl")
    view = _frame(page)
    etl = f'section.etl[data-etl="{ETL}"]'
    running_job = f"{etl} tr.job[data-state=running]"
    view.wait_for_selector(running_job, timeout=JOB_TIMEOUT_MS)

    # the ETL is listed, running, with one healthy pod per target
    assert view.get_attribute(f"{etl} .etl-state .badge", "data-state") == "running"
    assert view.locator(f"{etl} tr.target").count() == 2
    assert view.locator(f'{etl} tr.target[data-healthy="true"]').count() == 2
    # progress moves: the done count grows between two reads of the page
    first = _done(view, running_job)
    view.wait_for_function(
        "([sel, n]) => { const e = document.querySelector(sel); return e && Number(e.dataset.done) > n; }",
        arg=[running_job, first],
        timeout=30_000,
    )
    assert _done(view, running_job) > first
    page.screenshot(path=str(screenshots / "1-etl-view-job-running.png"), full_page=True)

    # the pods' logs, per target
    view.click(f'{etl} tr.target[data-target="t1"] button.show-logs')
    log = view.wait_for_selector(f'{etl} pre.logs[data-target="t1"]')
    assert log is not None
    assert log.inner_text().strip()
    page.screenshot(path=str(screenshots / "2-etl-view-pod-log.png"), full_page=True)

    # the job's task link opens the job's view (in the frame)
    view.click(f"{running_job} a.job-task")
    view.wait_for_selector("section.job-card")
    assert view.locator("section.job-card h2").inner_text().startswith(f"Job on ETL {ETL}")

    # Airflow's page of the task has an "AIS ETL job" tab showing the same view
    runs = page.request.get(f"{site.url}/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
    task_page = f"{site.url}/dags/{DAG_ID}/runs/{runs[0]['dag_run_id']}/tasks/transform_bucket"
    page.goto(f"{task_page}/plugin/ais-etl-task")
    tab = _frame(page)
    tab.wait_for_selector("section.job-card")
    assert tab.locator(f'section.etl[data-etl="{ETL}"] tr.target[data-healthy="true"]').count() == 2
    page.screenshot(path=str(screenshots / "3-airflow-task-tab-job.png"), full_page=True)

    # the task's "AIS ETL" extra link (on its Details tab) opens the job view, same origin
    page.goto(f"{task_page}/details")
    link = page.locator('a[href^="/ais-etl/task?"]')  # Airflow's own nav entry is /plugin/ais-etl
    link.wait_for(timeout=60_000)
    assert link.inner_text().strip() == "AIS ETL"
    assert "task_id=transform_bucket" in (link.get_attribute("href") or "")
    page.screenshot(path=str(screenshots / "4-airflow-task-extra-link.png"), full_page=True)
    link.click()
    page.wait_for_url("**/ais-etl/task?**")
    page.wait_for_selector("section.job-card")
    assert page.locator("section.job-card h2").inner_text().startswith(f"Job on ETL {ETL}")
    page.screenshot(path=str(screenshots / "5-task-job-view.png"), full_page=True)

    # the run ends well; the job view then shows the finished job
    dag_run["proc"].wait(timeout=240)
    finished = [line for line in site.log("dag-test").splitlines() if "DagRun Finished" in line]
    assert finished, site.log("dag-test")[-3000:]
    assert "state=success" in finished[-1]
    page.wait_for_selector('section.job-card[data-state="done"]', timeout=30_000)
    assert page.locator("section.job-card .job-objects").inner_text() == f"{NUM_OBJECTS}/{NUM_OBJECTS}"
    page.screenshot(path=str(screenshots / "6-task-job-view-done.png"), full_page=True)
    context.close()


def test_an_editor_stops_and_starts_the_etl_from_the_view(
    site: Site, dag_run: dict[str, Any], chromium: Any, screenshots: Path
) -> None:
    dag_run["proc"].wait(timeout=240)  # the run's teardown stopped the ETL
    site.wait_ready()
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    _login(page, site, "admin")
    page.goto(f"{site.url}/ais-etl/")
    etl = f'section.etl[data-etl="{ETL}"]'
    page.wait_for_selector(f'{etl} .etl-state .badge[data-state="stopped"]', timeout=30_000)
    page.click(f"{etl} button.show-last-logs")  # a stopped ETL still shows its last pods' logs
    assert "runtime ready" in page.wait_for_selector(f'{etl} pre.logs[data-target="t1"]').inner_text()
    page.click(f"{etl} button.start")
    page.wait_for_selector(f'{etl} .etl-state .badge[data-state="running"]', timeout=60_000)
    page.wait_for_selector(f'{etl} tr.target[data-healthy="true"]')
    assert page.query_selector(f"{etl} pre.logs") is None  # the stopped pods' logs went with the start
    page.screenshot(path=str(screenshots / "7-etl-started-from-view.png"), full_page=True)
    page.click(f"{etl} button.stop")
    page.wait_for_selector(f'{etl} .etl-state .badge[data-state="stopped"]', timeout=60_000)
    context.close()


def test_a_viewer_sees_the_etls_but_cannot_stop_them(site: Site, chromium: Any, screenshots: Path) -> None:
    site.wait_ready()
    context = chromium.new_context()
    page = context.new_page()
    _login(page, site, "viewer")
    page.goto(f"{site.url}/ais-etl/")
    page.wait_for_selector("#status:has-text('read only')")
    assert page.locator("button.stop, button.start").count() == 0
    page.screenshot(path=str(screenshots / "8-viewer-read-only.png"), full_page=True)
    context.close()

    token = site.token("viewer")
    resp = requests.post(
        f"{site.url}/ais-etl/api/etls/{ETL}/stop",
        json={"conn_id": "ais_etl_default"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 403, resp.text


def test_every_route_refuses_anonymous_requests(site: Site) -> None:
    """Every route of the plugin's app (read from its OpenAPI description) answers 401/403 without a login."""
    site.wait_ready()
    described = requests.get(
        f"{site.url}/ais-etl/openapi.json",
        headers={"Authorization": f"Bearer {site.token('viewer')}"},
        timeout=30,
    )
    assert described.status_code == 200, described.text
    routes = [("GET", "/openapi.json")]
    routes += [(m.upper(), path) for path, ops in described.json()["paths"].items() for m in ops]
    assert len(routes) >= 9, routes
    query = "?dag_id=d&run_id=r&task_id=t"
    for method, path in routes:
        url = f"{site.url}/ais-etl{path.replace('{name}', 'view.js')}{query}"
        resp = requests.request(method, url, json={"conn_id": "ais_etl_default"}, timeout=30)
        assert resp.status_code in (401, 403), (method, path, resp.status_code, resp.text[:200])
