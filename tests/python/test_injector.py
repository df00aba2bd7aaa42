"""`switchyard injector`, the mutating admission webhook, as the API server drives it.

The real binary serves HTTPS on an ephemeral loopback port with certificates from
`switchyard injector certs`; the reviews are real-shaped AdmissionReview v1 requests
(tests/fixtures/admission/: a Pod CREATE by the replicaset-controller for a Deployment's
ReplicaSet — `generateName`, `ownerReferences`, the service-account token volume the API server's
ServiceAccount plugin adds, `requestKind`, `options` CreateOptions —, an opted-out pod, a user's
`dryRun` of a bare pod without a token volume, a Deployment, a Pod UPDATE, an old review
version, a pod whose port the sidecar needs). Each returned JSONPatch is applied with the `jsonpatch` library (as the API server
does), the patched pod validates strictly against the Kubernetes 1.29 schemas, and it is exactly
what `switchyard inject -` prints for the same pod. Metrics are scraped per result, `/healthz`
on both listeners, and nothing malformed gets a 500.

Run: .venv/bin/python -m pytest tests/python/test_injector.py   (SWITCHYARD_BIN: the binary)
"""

import base64
import copy
import http.client
import json
import os
import queue
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonpatch
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))
FIXTURES = ROOT / "tests" / "fixtures" / "admission"
K8S_VERSION = "1.29.0"
# The injection defaults' flags, given to both `injector` and `inject`: the webhook must use them.
IMAGE = "registry.example.com/switchyard:injector-test"
DEFAULT_FLAGS = ["--image", IMAGE]
RESULTS = ["injected", "updated", "unchanged", "opted_out", "skipped", "refused", "malformed"]


def validate_builtin(doc):
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


class Injector:
    def __init__(self, certs):
        self.ca = certs / "ca.crt"
        self.proc = subprocess.Popen(
            [
                str(BINARY), "injector",
                "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key"),
                *DEFAULT_FLAGS,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l.strip()) for l in self.proc.stdout], daemon=True).start()
        first, second = lines.get(timeout=20), lines.get(timeout=20)
        assert first.startswith("injector listening on https://"), first
        assert second.startswith("injector metrics on http://"), second
        self.host, port = first.rsplit("//", 1)[1].rsplit(":", 1)
        self.port = int(port)
        self.metrics_addr = second.rsplit("//", 1)[1]
        self.context = ssl.create_default_context(cafile=str(self.ca))

    def request(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def review(self, doc):
        """POSTs an AdmissionReview (a dict, or raw bytes); the response AdmissionReview."""
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        # The API server adds its timeout as a query (`?timeout=10s`) to the webhook's path.
        status, raw = self.request("POST", "/inject?timeout=10s", body)
        assert status == 200, (status, raw)
        review = json.loads(raw)
        assert review["apiVersion"] == "admission.k8s.io/v1"
        assert review["kind"] == "AdmissionReview"
        assert review["response"]["allowed"] is True, review
        return review["response"]

    def metrics_get(self, path):
        with urllib.request.urlopen(f"http://{self.metrics_addr}{path}", timeout=10) as r:
            return r.status, r.read().decode()

    def counts(self):
        status, text = self.metrics_get("/metrics")
        assert status == 200
        out = {}
        for line in text.splitlines():
            prefix = 'switchyard_injector_requests_total{result="'
            if line.startswith(prefix):
                result, value = line[len(prefix):].split('"} ')
                out[result] = float(value)
        assert sorted(out) == sorted(RESULTS), out
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    out = tmp_path_factory.mktemp("injector") / "certs"
    done = subprocess.run(
        [str(BINARY), "injector", "certs", "--out", str(out), "--ip", "127.0.0.1"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    # stdout: the caBundle for the MutatingWebhookConfiguration, base64 of ca.crt.
    assert base64.b64decode(done.stdout.strip(), validate=True) == (out / "ca.crt").read_bytes()
    assert (out / "tls.key").stat().st_mode & 0o777 == 0o600
    return out


@pytest.fixture(scope="module")
def injector(certs):
    server = Injector(certs)
    try:
        yield server
    finally:
        server.stop()


class Delta:
    """The change of each result's count across a block."""

    def __init__(self, injector):
        self.injector = injector

    def __enter__(self):
        self.before = self.injector.counts()
        return self

    def __exit__(self, *exc):
        after = self.injector.counts()
        self.changes = {k: after[k] - self.before[k] for k in after if after[k] != self.before[k]}


def inject_cli(pod):
    """What `switchyard inject -` prints for `pod` (JSON on stdin), with the same defaults."""
    done = subprocess.run(
        [str(BINARY), "inject", *DEFAULT_FLAGS, "-"],
        input=json.dumps(pod), capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def patched(pod, response):
    """`pod` with the response's JSONPatch applied (the pod itself when there is none)."""
    if "patch" not in response:
        assert "patchType" not in response
        return copy.deepcopy(pod)
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"], validate=True))
    assert ops, "an empty patch must be omitted"
    return jsonpatch.JsonPatch(ops).apply(pod)


def sidecar(pod):
    found = [c for c in pod["spec"].get("initContainers", []) if c["name"] == "switchyard"]
    assert len(found) == 1, pod["spec"].get("initContainers")
    return found[0]


def assert_injected(review, response):
    pod = review["request"]["object"]
    assert response["uid"] == review["request"]["uid"]
    out = patched(pod, response)
    validate_builtin(out)
    assert out == inject_cli(pod)
    gw = sidecar(out)
    assert gw["restartPolicy"] == "Always"  # a native sidecar
    assert gw["image"] == IMAGE
    assert out["metadata"]["labels"]["switchyard.dev/sidecar"] == "true"
    # The app's containers are still there, by name, in order.
    assert [c["name"] for c in out["spec"]["containers"]] == [c["name"] for c in pod["spec"]["containers"]]
    return out


def test_a_replicaset_pod_is_injected_as_switchyard_inject_does(injector):
    review = fixture("pod-create-replicaset.json")
    validate_builtin(review["request"]["object"])
    with Delta(injector) as d:
        response = injector.review(review)
    out = assert_injected(review, response)
    # The token volume the API server added is kept, and so is everything unrelated.
    volumes = [v["name"] for v in out["spec"]["volumes"]]
    assert "kube-api-access-x7k2p" in volumes
    assert out["metadata"]["ownerReferences"] == review["request"]["object"]["metadata"]["ownerReferences"]
    assert out["metadata"]["managedFields"] == review["request"]["object"]["metadata"]["managedFields"]
    assert d.changes == {"injected": 1}


def test_a_dry_run_is_served_the_same(injector):
    review = fixture("pod-create-dry-run.json")
    assert review["request"]["dryRun"] is True
    assert "volumes" not in review["request"]["object"]["spec"]  # no token automounted
    with Delta(injector) as d:
        response = injector.review(review)
    assert_injected(review, response)
    wet = copy.deepcopy(review)
    wet["request"]["dryRun"] = False
    wet["request"]["options"].pop("dryRun")
    assert injector.review(wet).get("patch") == response["patch"]
    assert d.changes == {"injected": 1}


def test_an_already_injected_pod_is_unchanged(injector):
    review = fixture("pod-create-replicaset.json")
    review["request"]["uid"] = "6c1e9a3f-0b2d-4e5c-8a7f-3d9b1e0c2f4a"
    review["request"]["object"] = inject_cli(review["request"]["object"])
    assert review["request"]["object"]["metadata"]["labels"]["switchyard.dev/sidecar"] == "true"
    with Delta(injector) as d:
        response = injector.review(review)
    assert response["uid"] == review["request"]["uid"]
    assert "patch" not in response
    assert d.changes == {"unchanged": 1}


def test_an_opted_out_pod_is_left_alone(injector):
    review = fixture("pod-create-opted-out.json")
    assert review["request"]["object"]["metadata"]["annotations"]["switchyard.dev/inject"] == "disabled"
    with Delta(injector) as d:
        response = injector.review(review)
    assert response["uid"] == review["request"]["uid"]
    assert "patch" not in response
    assert d.changes == {"opted_out": 1}


def test_a_pod_the_injection_refuses_is_allowed_with_the_reason_as_a_warning(injector):
    # Its container already uses 9090, the sidecar's admin port: `switchyard inject` refuses it
    # too, and the webhook never blocks a pod (failurePolicy: Ignore), so it is let through.
    review = fixture("pod-create-port-conflict.json")
    validate_builtin(review["request"]["object"])
    with Delta(injector) as d:
        response = injector.review(review)
    assert response["uid"] == review["request"]["uid"]
    assert "patch" not in response
    [warning] = response["warnings"]
    assert "shop/ReplicaSet/metrics-6b8c9d7f5" in warning and "9090" in warning, warning
    assert d.changes == {"refused": 1}
    done = subprocess.run(
        [str(BINARY), "inject", *DEFAULT_FLAGS, "-"],
        input=json.dumps(review["request"]["object"]), capture_output=True, text=True, timeout=30,
    )
    assert done.returncode != 0 and "9090" in done.stderr, done


@pytest.mark.parametrize("name", ["deployment-create.json", "pod-update.json"])
def test_anything_but_a_pod_create_is_allowed_untouched(injector, name):
    review = fixture(name)
    validate_builtin(review["request"]["object"])
    with Delta(injector) as d:
        response = injector.review(review)
    assert response == {"uid": review["request"]["uid"], "allowed": True}
    assert d.changes == {"skipped": 1}


def malformed_bodies():
    ok = fixture("pod-create-replicaset.json")
    no_request = {k: v for k, v in ok.items() if k != "request"}
    string_object = copy.deepcopy(ok)
    string_object["request"]["object"] = "a pod"
    no_object = copy.deepcopy(ok)
    del no_object["request"]["object"]
    wrong_kind = copy.deepcopy(ok)
    wrong_kind["kind"] = "ConversionReview"
    return [
        ("malformed-v1beta1.json", json.dumps(fixture("malformed-v1beta1.json")).encode(), "0e2c4a6b-8d1f-4b3d-a5c7-e9f1b3d5a7c9"),
        ("not json", b"<AdmissionReview/>", ""),
        ("empty", b"", ""),
        ("no request", json.dumps(no_request).encode(), ""),
        ("object not an object", json.dumps(string_object).encode(), ok["request"]["uid"]),
        ("no object", json.dumps(no_object).encode(), ok["request"]["uid"]),
        ("wrong kind", json.dumps(wrong_kind).encode(), ok["request"]["uid"]),
    ]


@pytest.mark.parametrize("label,body,uid", malformed_bodies(), ids=[m[0] for m in malformed_bodies()])
def test_a_malformed_review_is_allowed_with_a_warning_never_a_500(injector, label, body, uid):
    with Delta(injector) as d:
        response = injector.review(body)
    assert response["uid"] == uid
    assert "patch" not in response
    assert len(response["warnings"]) == 1 and "not injected" in response["warnings"][0], response
    assert d.changes == {"malformed": 1}


def test_healthz_on_both_listeners_and_short_errors_elsewhere(injector):
    assert injector.request("GET", "/healthz") == (200, b"ok\n")
    assert injector.metrics_get("/healthz") == (200, "ok\n")
    assert injector.request("GET", "/inject")[0] == 405
    assert injector.request("GET", "/nope")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        injector.metrics_get("/inject")
    assert e.value.code == 404
    status, text = injector.metrics_get("/metrics")
    assert "# TYPE switchyard_injector_requests_total counter" in text
    assert "switchyard_injector_review_duration_seconds_bucket" in text
    # The served certificate's expiry: `injector certs` makes it valid for 365 days.
    [expiry] = [float(l.split()[1]) for l in text.splitlines() if l.startswith("switchyard_injector_certificate_not_after_seconds ")]
    assert abs(expiry - (time.time() + 365 * 86400)) < 3 * 3600, expiry
