"""The web console in a real browser (Debian's chromium, headless): sign in, create a cluster
and wait for it, run a service from an image pushed to the registry, see its pods Running
and their logs, scale it, change its image and see the rollout finish, see a CPU chart with
data, then delete it all; each step checked against the v2 API's view."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from openccs.client import Client

from . import browser
from .conftest import ROOT, Server, unique_cluster_cidr
from .console_helpers import PASSWORD, set_password
from .test_registry_lib import call_ok, push_ok, registry_of, tagged_image
from .workload_helpers import until

pytestmark = [
    pytest.mark.xdist_group("console-browser"),
    pytest.mark.skipif(not browser.available(), reason="needs Debian's chromium and chromedriver"),
]

# Screenshots the README shows: copied from the test's artefacts into docs/ when
# OPENCCS_UPDATE_DOCS=1 (a normal run leaves the work tree as it was).
DOCS = ROOT / "docs" / "console"
UPDATE_DOCS = os.environ.get("OPENCCS_UPDATE_DOCS") == "1"
FOR_README = ("overview", "service", "monitoring", "pod-restarted", "cluster-more")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("console-journey")
    server = Server(
        data_dir=base / "data",
        db_url=None,
        extra_args=("--health-interval", "1", "--sample-interval", "1"),
    )
    try:
        server.start()
        yield server
    finally:
        if server.proc is not None:
            server.stop()
        server.sweep()


def ok(c: Client, action: str, **params: Any) -> Any:
    res = c.call(action, params)
    assert res["code"] == 0, (action, res)
    return res["data"]


def wait_page(d: WebDriver, what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    """Wait for the page (its live sections refresh themselves) to show something."""

    def seen() -> Any:
        try:
            return check()
        except Exception:  # an element replaced by a refresh while being read
            return None

    return until(what, seen, timeout=timeout, every=0.5)


def pod_rows(d: WebDriver) -> list[tuple[str, str, str]]:
    rows = d.find_elements(By.CSS_SELECTOR, "#pod-table tbody tr[data-pod]")
    return [
        (
            r.get_attribute("data-pod") or "",
            r.get_attribute("data-status") or "",
            r.find_element(By.CSS_SELECTOR, "td.image").text,
        )
        for r in rows
    ]


def shot(d: WebDriver, name: str) -> None:
    path = browser.screenshot(d, name)
    if UPDATE_DOCS and name in FOR_README and path.exists():
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / f"{name}.png")


def test_the_whole_lifecycle_in_the_console(srv: Server, tmp_path: Path) -> None:
    c = srv.client()
    uin = srv.default.uin
    set_password(srv, uin)
    # An image in the account's registry, pushed with skopeo as a user would.
    reg = registry_of(srv)
    call_ok(srv, None, "RegisterRepositoryAccountNew", password="Secr3t-pass")
    call_ok(srv, None, "CreateCCRNamespace", namespace="team")
    creds = f"{uin}:Secr3t-pass"
    push_ok(reg, tagged_image(tmp_path, "v1"), "team/site:v1", creds, srv.default)
    push_ok(reg, tagged_image(tmp_path, "v2"), "team/site:v2", creds, srv.default)
    vpc = c.call("DescribeVpcEx")["data"][0]["unVpcId"]
    subnet = c.call("DescribeSubnetEx", {"vpcId": vpc, "zoneIds": [100003]})["data"][0]
    cidr = unique_cluster_cidr()
    base = srv.https_url + "/console"

    with browser.chromium() as d:
        # Sign in.
        browser.sign_in(d, srv.https_url, uin, PASSWORD, then="/clusters")

        # Create a cluster from the form, and watch its task until it is Running.
        d.find_element(By.ID, "clusterName").send_keys("journey")
        d.find_element(By.ID, "clusterCIDR").send_keys(cidr)
        Select(d.find_element(By.ID, "vpcId")).select_by_value(vpc)
        Select(d.find_element(By.ID, "subnetId")).select_by_value(subnet["unSubnetId"])
        Select(d.find_element(By.ID, "zoneId")).select_by_value("ap-guangzhou-3")
        for field, value in (("goodsNum", "1"), ("cpu", "2"), ("mem", "2")):
            d.find_element(By.ID, field).clear()
            d.find_element(By.ID, field).send_keys(value)
        browser.click_through(d, By.ID, "create-cluster-submit")
        assert "/console/clusters/cls-" in d.current_url, d.page_source[:2000]
        cluster = d.current_url.split("/console/clusters/")[1].split("?")[0]
        assert d.find_element(By.ID, "task")
        wait_page(
            d, "cluster Running", lambda: d.find_element(By.ID, "cluster-status").text == "Running",
            timeout=300,
        )  # fmt: skip
        wait_page(d, "task succ", lambda: d.find_element(By.ID, "task-status").text == "succ")
        api_cluster = ok(c, "DescribeCluster", clusterIds=[cluster])["clusters"][0]
        assert api_cluster["status"] == "Running" and api_cluster["nodeNum"] == 1
        rows = lambda sel, attr: {  # noqa: E731 (read again if a refresh replaced them)
            r.get_attribute(attr) for r in d.find_elements(By.CSS_SELECTOR, sel)
        }
        shown = wait_page(d, "its node", lambda: rows("tr[data-node]", "data-node"))
        nodes = ok(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
        assert shown == {n["instanceId"] for n in nodes}
        shot(d, "cluster")
        node = nodes[0]["instanceId"]

        # Cordon and uncordon the node, label it.
        def unschedulable() -> bool:
            found = ok(c, "DescribeClusterInstances", clusterId=cluster)["nodes"]
            return bool(found[0]["unschedulable"])

        browser.click_through(d, By.CSS_SELECTOR, f"tr[data-node='{node}'] button.op-cordon")
        assert unschedulable()
        wait_page(d, "cordoned", lambda: "cordoned" in d.find_element(By.ID, "node-table").text)
        browser.click_through(d, By.CSS_SELECTOR, f"tr[data-node='{node}'] button.op-uncordon")
        assert not unschedulable()
        d.find_element(By.ID, "label-nodes").click()
        d.find_element(By.CSS_SELECTOR, f"#label-{node} textarea").send_keys("tier=web")
        browser.click_through(d, By.CSS_SELECTOR, f"#label-{node} button")
        labels = ok(c, "DescribeClusterInstances", clusterId=cluster)["nodes"][0]["labels"]
        assert labels.get("tier") == "web", labels

        # A service from the registry's image, picked from the form's list.
        browser.click_through(d, By.ID, "new-service-link")
        d.find_element(By.ID, "serviceName").send_keys("site")
        picker = Select(d.find_element(By.ID, "image-picker"))
        v1 = next(o.text for o in picker.options if o.text.endswith("team/site:v1"))
        v2 = v1[: -len("v1")] + "v2"
        picker.select_by_visible_text(v1)
        assert d.find_element(By.ID, "image").get_attribute("value") == v1  # the script filled it
        d.find_element(By.ID, "replicas").clear()
        d.find_element(By.ID, "replicas").send_keys("2")
        d.find_element(By.ID, "ports").send_keys("80:80/TCP")
        d.find_element(By.ID, "command").send_keys("sh")
        d.find_element(By.ID, "arguments").send_keys(
            "-c\necho started $HOSTNAME; exec httpd -f -p 80 -h /www"
        )
        d.find_element(By.ID, "envs").send_keys("GREETING=hello")
        browser.click_through(d, By.ID, "create-service-submit")
        assert d.current_url.endswith(f"/clusters/{cluster}/services/default/site"), d.current_url
        ref = {"clusterId": cluster, "serviceName": "site", "namespace": "default"}
        # A service whose first run crashes (the next one stays up): its pod page shows the
        # crashed run's logs beside the current one's.
        crash = (
            "echo run-$(cat /proc/sys/kernel/random/uuid); "
            "if [ -e /d/ran ]; then sleep 600; else touch /d/ran; exit 1; fi"
        )
        marker = f"/crasher-{uuid.uuid4().hex[:8]}"
        ok(c, "CreateClusterService", clusterId=cluster, serviceName="crasher", replicas=1,
           accessType="None",
           volumes=[{"name": "d", "volumeType": "hostPath", "hostPath": marker}],
           containers=[{"containerName": "c", "image": v1, "command": "sh",
                        "arguments": ["-c", crash],
                        "volumeMounts": [{"volumeName": "d", "mountPath": "/d"}]}])  # fmt: skip
        crash_ref = {**ref, "serviceName": "crasher"}

        def running(n: int, image: str) -> bool:
            rows = pod_rows(d)
            return len(rows) == n and all(s == "Running" and image in i for _, s, i in rows)

        def wait_running(what: str, n: int, image: str, timeout: float) -> None:
            try:
                wait_page(d, what, lambda: running(n, image), timeout=timeout)
            except AssertionError as exc:  # say what the page and the API showed
                api = [(p["name"], p["status"], p.get("reason"))
                       for p in ok(c, "DescribeServiceInstance", **ref)["instances"]]  # fmt: skip
                raise AssertionError(f"{exc}; page: {pod_rows(d)}; API: {api}") from None

        wait_running("2 pods Running", 2, v1, timeout=180)
        api_pods = ok(c, "DescribeServiceInstance", **ref)["instances"]
        assert {p["name"] for p in api_pods} == wait_page(
            d, "pod names", lambda: {n for n, _, _ in pod_rows(d)}
        )
        assert all(p["status"] == "Running" for p in api_pods)
        shot(d, "service")

        # A pod's logs, followed live.
        pod = wait_page(d, "a pod", lambda: pod_rows(d)[0][0])
        browser.click_through(d, By.LINK_TEXT, pod)
        log = lambda: d.find_element(By.CSS_SELECTOR, "pre.log").text  # noqa: E731
        wait_page(d, "the pod's log", lambda: f"started {pod}" in log())
        api_log = ok(c, "DescribeInstanceLog", podName=pod, **ref)["podLog"][0]["containerLog"][0]
        assert f"started {pod}" in api_log["log"]
        shot(d, "pod")

        # The crashed run's logs, after the restart, as the API's previous-run view has them.
        def restarted() -> str | None:
            pods = ok(c, "DescribeServiceInstance", **crash_ref)["instances"]
            if pods and pods[0]["restartCount"] >= 1 and pods[0]["status"] == "Running":
                return str(pods[0]["name"])
            return None

        crash_pod = until("the crasher restarted", restarted, timeout=180)
        d.get(f"{base}/clusters/{cluster}/services/default/crasher/pods/{crash_pod}")
        prev = lambda: d.find_element(By.CSS_SELECTOR, "pre.log.previous").text.strip()  # noqa: E731
        shown_prev = wait_page(
            d, "the previous run's log", lambda: prev().startswith("run-") and prev()
        )
        api_prev = ok(c, "OpenccsDescribeInstancePreviousLog", podName=crash_pod, **crash_ref)
        assert api_prev["podLog"][0]["containerLog"][0]["log"].strip() == shown_prev
        current = wait_page(
            d, "the current run's log", lambda: log().strip().startswith("run-") and log().strip()
        )
        assert current != shown_prev
        shot(d, "pod-restarted")
        ok(c, "DeleteClusterService", **crash_ref)

        def crasher_gone() -> bool:
            found = ok(c, "DescribeClusterService", clusterId=cluster)["services"]
            return "crasher" not in {x["serviceName"] for x in found}

        until("the crasher gone", crasher_gone, timeout=120)

        # Scale to 3.
        d.get(f"{base}/clusters/{cluster}/services/default/site")
        d.find_element(By.ID, "scale-replicas").clear()
        d.find_element(By.ID, "scale-replicas").send_keys("3")
        browser.click_through(d, By.ID, "scale-submit")
        wait_running("3 pods Running", 3, v1, timeout=180)
        info = ok(c, "DescribeClusterServiceInfo", **ref)["service"]
        assert info["desiredReplicas"] == 3

        # A new image, rolled out.
        d.find_element(By.ID, "new-image").clear()
        d.find_element(By.ID, "new-image").send_keys(v2)
        browser.click_through(d, By.ID, "image-submit")
        wait_running("rollout to v2", 3, v2, timeout=240)
        status = lambda: d.find_element(By.ID, "service-status").text  # noqa: E731
        wait_page(d, "service Normal", lambda: status() == "Normal")
        info = ok(c, "DescribeClusterServiceInfo", **ref)["service"]
        assert info["containers"][0]["image"] == v2 and info["status"] == "Normal"
        api_pods = ok(c, "DescribeServiceInstance", **ref)["instances"]
        assert len(api_pods) == 3
        assert all(ct["image"] == v2 for p in api_pods for ct in p["containers"])

        # Pause and resume.
        browser.click_through(d, By.ID, "pause-submit")
        assert ok(c, "DescribeClusterServiceInfo", **ref)["service"]["status"] == "Paused"
        wait_page(d, "Paused shown", lambda: status() == "Paused")
        browser.click_through(d, By.ID, "resume-submit")
        info_status = lambda: ok(c, "DescribeClusterServiceInfo", **ref)["service"]["status"]  # noqa: E731
        until("resumed", lambda: info_status() == "Normal")
        service_url = f"{base}/clusters/{cluster}/services/default/site"

        def normal_again() -> bool:
            # The page the resume led to refreshes itself; should it be another page (an
            # answer lost to the machine's load), a person would open the service again.
            if not d.find_elements(By.ID, "service-status"):
                d.get(service_url)
            return status() == "Normal"

        wait_page(d, "Normal again", normal_again)

        # The YAML view is the API's text.
        browser.click_through(d, By.ID, "yaml-link")
        text = ok(c, "DescribeClusterServiceText", **ref)["serviceText"]
        assert d.find_element(By.ID, "yaml").text.strip() == text.strip()

        # A CPU chart with data.
        d.get(f"{base}/monitoring?cluster={cluster}&range=hour")

        def cpu_points() -> int:
            d.refresh()
            svg = d.find_element(By.CSS_SELECTOR, "svg[data-metric=dc_cpu_usage]")
            return int(svg.get_attribute("data-points") or 0)

        wait_page(d, "two minutes of CPU data", lambda: cpu_points() >= 2, timeout=240)
        assert d.find_elements(By.CSS_SELECTOR, "svg[data-metric=dc_cpu_usage] path.series")
        shot(d, "monitoring")
        # And the node's own, from its row on the cluster page.
        d.get(f"{base}/clusters/{cluster}")
        browser.click_through(d, By.LINK_TEXT, node)
        assert f"node={node}" in d.current_url

        def node_points() -> int:
            d.refresh()
            svg = d.find_element(By.CSS_SELECTOR, "svg[data-metric=node_cpu_usage]")
            return int(svg.get_attribute("data-points") or 0)

        wait_page(d, "the node's CPU data", lambda: node_points() >= 2, timeout=240)
        dims = [{"name": "docker_clusterid", "value": cluster},
                {"name": "unInstanceId", "value": node}]  # fmt: skip
        api_node = c.call("GetMonitorData", {"namespace": "qce/cvm", "metricName": "node_mem_usage",
                                             "dimensions": dims, "period": 60})  # fmt: skip
        assert api_node["code"] == 0 and any(v is not None for v in api_node["dataPoints"])

        # An autoscaling group from the node's launch settings: created, its range set,
        # disabled, deleted; each seen by the API.
        d.get(f"{base}/clusters/{cluster}/more")
        d.find_element(By.ID, "asg-form-toggle").click()
        form = d.find_element(By.ID, "create-asg")
        form.find_element(By.NAME, "autoScalingGroupName").send_keys("burst")
        browser.click_through(d, By.ID, "create-asg-submit")
        groups = ok(c, "DescribeClusterAsg", clusterId=cluster)["asgInfo"]
        assert [(g["autoScalingGroupName"], g["minSize"], g["maxSize"]) for g in groups] == [
            ("burst", 0, 2)
        ]
        gid = groups[0]["autoScalingGroupId"]
        row = f"tr[data-asg='{gid}']"
        d.find_element(By.CSS_SELECTOR, f"{row} input[name=maxSize]").clear()
        d.find_element(By.CSS_SELECTOR, f"{row} input[name=maxSize]").send_keys("3")
        browser.click_through(d, By.CSS_SELECTOR, f"{row} button.op-range")
        assert ok(c, "DescribeClusterAsg", clusterId=cluster)["asgInfo"][0]["maxSize"] == 3
        browser.click_through(d, By.CSS_SELECTOR, f"{row} button.op-asg-disable")
        assert ok(c, "DescribeClusterAsg", clusterId=cluster)["asgInfo"][0]["status"] == "disabled"
        shot(d, "cluster-more")
        browser.click_through(d, By.CSS_SELECTOR, f"{row} button.op-asg-delete")
        groups_left = lambda: ok(c, "DescribeClusterAsg", clusterId=cluster)["asgInfo"]  # noqa: E731
        until("group deleted", lambda: not groups_left(), timeout=120)

        # The registry page knows the pushed tags.
        d.get(f"{base}/registry/repository?name=team/site")
        assert wait_page(d, "tags", lambda: rows("tr[data-tag]", "data-tag")) == {"v1", "v2"}
        assert d.find_element(By.ID, "visibility").text == "private"
        browser.click_through(d, By.ID, "toggle-public-submit")
        assert d.find_element(By.ID, "visibility").text == "public"
        own = ok(c, "SearchUserRepository", reponame="team/site")["repoInfo"]
        assert own[0]["public"] == 1
        d.get(f"{base}/registry")
        browser.click_through(d, By.CSS_SELECTOR, "tr[data-repo='team/site'] button.favor")
        favoured = lambda: d.find_element(By.CSS_SELECTOR, "tr[data-repo='team/site']").text  # noqa: E731
        wait_page(d, "favourite shown", lambda: "unfavourite" in favoured())
        favors = ok(c, "GetFavor")["repoInfo"]
        assert [f["reponame"] for f in favors] == ["team/site"]
        shot(d, "registry")
        d.get(f"{base}/")
        wait_page(d, "overview counts", lambda: d.find_element(By.ID, "count-pods").text == "3")
        shot(d, "overview")

        # Delete the service, then the cluster.
        d.get(f"{base}/clusters/{cluster}/services/default/site")
        browser.click_through(d, By.ID, "delete-service-submit")
        assert "/services?namespace=default" in d.current_url

        def service_gone() -> bool:
            return not ok(c, "DescribeClusterService", clusterId=cluster)["services"]

        until("service deleted", service_gone, timeout=120)
        d.get(f"{base}/clusters/{cluster}")
        browser.click_through(d, By.ID, "delete-cluster-submit")
        until(
            "cluster deleted",
            lambda: not ok(c, "DescribeCluster", clusterIds=[cluster])["clusters"],
            timeout=300,
        )
        d.get(f"{base}/clusters")
        assert cluster not in d.find_element(By.ID, "clusters").text
