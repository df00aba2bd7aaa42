"""`switchyard inject`: the CLI that adds the Switchyard sidecar to Kubernetes manifests.

Over real-shaped manifests (tests/fixtures/inject/: every workload kind in one multi-document
stream, a `kubectl get -o json` List, `kubectl kustomize` output): the output is the golden file
byte for byte, validates strictly against the Kubernetes 1.29 schemas, injecting twice equals
injecting once, uninjecting restores the original; conflicts are refused naming the workload
and nothing is written; the example in k8s/base is this command's output; the forward-proxy
overlay agrees with `--mode forward-proxy`.

UPDATE_GOLDEN=1 rewrites the golden files (review the diff).
"""

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from test_k8s import BINARY, ROOT, kustomize, one, validate

FIXTURES = ROOT / "tests/fixtures/inject"
GOLDEN = ROOT / "tests/golden/inject"
KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"]


def inject(*args, stdin=None, ok=True):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: cargo build first")
    out = subprocess.run([str(BINARY), "inject", *args], input=stdin, capture_output=True, text=True, timeout=60)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def template(doc):
    if doc["kind"] == "Pod":
        return doc
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    return doc["spec"]["template"]


def sidecar_of(doc):
    [gw] = [c for c in template(doc)["spec"].get("initContainers", []) if c["name"] == "switchyard"]
    return gw


def golden(name, text):
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept)"


@pytest.fixture(scope="module")
def injected():
    source = (FIXTURES / "workloads.yaml").read_text()
    return source, inject(str(FIXTURES / "workloads.yaml")).stdout


def test_every_workload_kind_is_injected_and_validates_strictly(injected):
    source, out = injected
    golden("workloads.yaml", out)
    result = docs(out)
    assert [d["kind"] for d in result] == [d["kind"] for d in docs(source)]
    for doc in result:
        validate(doc)
    for kind in KINDS:
        targets = [d for d in result if d["kind"] == kind and d["metadata"]["name"] != "batch-reports"]
        assert targets, kind
        for doc in targets:
            gw = sidecar_of(doc)
            assert gw["restartPolicy"] == "Always" and template(doc)["spec"]["initContainers"][0] is gw
            assert template(doc)["metadata"]["labels"]["switchyard.dev/sidecar"] == "true"


def test_everything_else_passes_through_byte_for_byte(injected):
    source, out = injected
    # The ConfigMap keeps its comments and its quoted "0440"; the opted-out Deployment and the
    # Service are untouched.
    for marker in ['  mode: "0440"     # a string, not an octal number', "switchyard.dev/inject: disabled"]:
        assert marker in out
    untouched = [d for d in docs(source) if d["kind"] in ("Namespace", "ConfigMap", "Service")]
    untouched += [d for d in docs(source) if d["metadata"]["name"] == "batch-reports"]
    for doc in untouched:
        assert doc in docs(out), doc["metadata"]["name"]
        assert "initContainers" not in json.dumps(doc)


def test_injecting_twice_equals_injecting_once_and_uninject_restores(injected):
    source, out = injected
    again = inject("-", stdin=out)
    assert again.stdout == out, "a second injection changed the manifests"
    assert "unchanged" in again.stderr
    removed = inject("--uninject", "-", stdin=out).stdout
    assert docs(removed) == docs(source)
    # Uninjecting what was never injected changes nothing, byte for byte.
    assert inject("--uninject", "-", stdin=source).stdout == source


def test_annotations_set_ports_resources_mode_and_env_targets(injected):
    _, out = injected
    by_name = {d["metadata"]["name"]: d for d in docs(out) if d["kind"] in KINDS}
    # The app of the StatefulSet listens on 8080 itself: the proxy moved, the app's env follows.
    indexer = by_name["indexer"]
    gw = sidecar_of(indexer)
    assert "127.0.0.1:18080" in gw["args"]
    env = {e["name"]: e["value"] for e in template(indexer)["spec"]["containers"][0]["env"]}
    assert env == {"OPENAI_BASE_URL": "http://127.0.0.1:18080/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:18080"}
    assert gw["resources"]["requests"] == {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "1Gi"}
    assert gw["resources"]["limits"] == {"memory": "384Mi"}
    # The DaemonSet: forward-proxy mode, its admin port moved (probes follow the port name).
    agent = by_name["node-agent"]
    gw = sidecar_of(agent)
    assert gw["ports"] == [{"name": "switchyard", "containerPort": 9190, "protocol": "TCP"}]
    assert "0.0.0.0:9190" in gw["args"]
    app = template(agent)["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:8080" and "OPENAI_BASE_URL" not in env
    assert {m["name"] for m in app["volumeMounts"]} == {"switchyard-ca-cert"}
    # No fsGroup in that pod: the Secret files must be readable by the sidecar's user.
    volumes = {v["name"]: v for v in template(agent)["spec"]["volumes"]}
    assert volumes["switchyard-keys"]["secret"]["defaultMode"] == 0o444
    assert volumes["switchyard-ca-cert"]["secret"]["items"] == [
        {"key": "ca.pem", "path": "ca.pem"},
        {"key": "bundle.pem", "path": "bundle.pem"},
    ]
    # With an fsGroup, 0440.
    volumes = {v["name"]: v for v in template(by_name["web"])["spec"]["volumes"]}
    assert volumes["switchyard-keys"]["secret"]["defaultMode"] == 0o440
    assert volumes["data"]["secret"]["defaultMode"] == 0o440, "the app's 0440 is octal, as kubectl reads it"
    # The Job: only the named container gets the environment.
    job = template(by_name["backfill"])["spec"]["containers"]
    assert [c["name"] for c in job if "env" in c] == ["backfill"]
    # The CronJob: its workload annotations name the ConfigMap and the Secret.
    volumes = {v["name"]: v for v in template(by_name["nightly-summary"])["spec"]["volumes"]}
    assert volumes["switchyard-config"]["configMap"]["name"] == "switchyard-batch"
    assert volumes["switchyard-keys"]["secret"]["secretName"] == "batch-provider-keys"
    # The Deployment: workload annotation image; its own init container runs after the sidecar.
    web = template(by_name["web"])["spec"]
    assert [c["name"] for c in web["initContainers"]] == ["switchyard", "migrate"]
    assert web["initContainers"][0]["image"] == "registry.example.com/switchyard:0.1.0"


def test_a_version_or_setting_change_updates_the_sidecar_in_place(injected):
    _, out = injected
    newer = inject("--image", "switchyard:9.9.9", "-", stdin=out)
    assert "updated" in newer.stderr
    result = {d["metadata"]["name"]: d for d in docs(newer.stdout) if d["kind"] in KINDS}
    assert sidecar_of(result["debug"])["image"] == "switchyard:9.9.9"
    # Annotated images win over the flag.
    assert sidecar_of(result["web"])["image"] == "registry.example.com/switchyard:0.1.0"
    assert len(template(result["debug"])["spec"]["initContainers"]) == 1
    # Moving the proxy port rewrites the app's environment instead of adding to it.
    moved = docs(inject("--proxy-port", "7000", "-", stdin=out).stdout)
    [debug] = [d for d in moved if d["metadata"]["name"] == "debug"]
    env = template(debug)["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env] == ["http://127.0.0.1:7000/v1", "http://127.0.0.1:7000"]


def test_a_kubectl_list_in_json_is_injected_in_json():
    source = (FIXTURES / "list.json").read_text()
    out = inject("-", stdin=source).stdout
    golden("list.json", out)
    result = json.loads(out)
    assert result["kind"] == "List"
    for item in result["items"]:
        validate(item)
    assert sum(1 for i in result["items"] if i["kind"] in KINDS and sidecar_of(i)) == 2
    assert inject("-", stdin=out).stdout == out
    assert json.loads(inject("--uninject", "-", stdin=out).stdout) == json.loads(source)


def test_kustomize_output_is_injected_and_still_validates():
    rendered = subprocess.run(
        [str(Path(__import__("test_k8s").tool("kubectl"))), "kustomize", str(ROOT / "k8s/overlays/prod")],
        capture_output=True, text=True, timeout=60,
    ).stdout
    # The prod overlay's sidecar differs from the defaults (its image and resources): updated.
    out = inject("--image", "registry.example.com/switchyard:0.1.0", "-", stdin=rendered)
    assert "Deployment/checkout (namespace checkout): updated" in out.stderr
    for doc in docs(out.stdout):
        validate(doc)
    assert inject("--image", "registry.example.com/switchyard:0.1.0", "-", stdin=out.stdout).stdout == out.stdout


def test_the_example_in_k8s_base_is_the_output_of_switchyard_inject():
    plain = ROOT / "k8s/examples/checkout.yaml"
    out = inject("--image", "switchyard", str(plain)).stdout
    assert out == (ROOT / "k8s/base/deployment.yaml").read_text(), (
        "k8s/base/deployment.yaml is not `switchyard inject --image switchyard k8s/examples/checkout.yaml`"
    )
    [source] = docs(plain.read_text())
    assert "initContainers" not in json.dumps(source), "the plain app has no sidecar"


def test_the_forward_proxy_overlay_agrees_with_forward_proxy_mode():
    rendered = one(kustomize("overlays/forward-proxy"), "Deployment")
    [plain] = docs((ROOT / "k8s/examples/checkout.yaml").read_text())
    [ours] = docs(inject("--image", "switchyard", "--mode", "forward-proxy", "-", stdin=yaml.safe_dump(plain)).stdout)
    theirs, ours = rendered["spec"]["template"]["spec"], ours["spec"]["template"]["spec"]

    def by_name(items):
        return {i["name"]: i for i in items}

    assert by_name(theirs["volumes"]) == by_name(ours["volumes"])
    [app_theirs], [app_ours] = theirs["containers"], ours["containers"]
    assert by_name(app_theirs["env"]) == by_name(app_ours["env"])
    assert by_name(app_theirs["volumeMounts"]) == by_name(app_ours["volumeMounts"])
    gw_theirs, gw_ours = by_name(theirs["initContainers"])["switchyard"], by_name(ours["initContainers"])["switchyard"]
    assert by_name(gw_theirs["volumeMounts"]) == by_name(gw_ours["volumeMounts"])
    assert gw_theirs["args"] == gw_ours["args"]


def pod(name="p", **spec):
    spec.setdefault("containers", [{"name": "app", "image": "app:1"}])
    spec.setdefault("terminationGracePeriodSeconds", 60)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


@pytest.mark.parametrize(
    "spec, annotations, reason",
    [
        ({"containers": [{"name": "app", "ports": [{"containerPort": 9090}]}]}, {}, 'container "app" already uses port 9090, the Switchyard admin port'),
        ({"containers": [{"name": "app", "ports": [{"containerPort": 8080}]}]}, {}, "switchyard.dev/proxy-port"),
        ({"initContainers": [{"name": "init", "ports": [{"containerPort": 7000}]}]}, {"switchyard.dev/admin-port": "7000"}, 'container "init" already uses port 7000'),
        ({"containers": [{"name": "switchyard", "image": "x"}]}, {}, "already named"),
        ({"hostNetwork": True}, {}, "hostNetwork"),
        ({"containers": [{"name": "app", "env": [{"name": "OPENAI_BASE_URL", "value": "https://api.openai.com/v1"}]}]}, {}, 'container "app" already sets OPENAI_BASE_URL'),
        ({"containers": [{"name": "app", "env": [{"name": "HTTPS_PROXY", "value": "http://corp:3128"}]}]}, {"switchyard.dev/mode": "forward-proxy"}, "already sets HTTPS_PROXY"),
        ({}, {"switchyard.dev/env-targets": "worker"}, '"worker", which is not one of the pod\'s containers'),
        ({}, {"switchyard.dev/mode": "sidecar"}, "switchyard.dev/mode"),
        ({}, {"switchyard.dev/resources": '{"requests": {"cpu": "a lot"}}'}, "switchyard.dev/resources"),
        ({}, {"switchyard.dev/imgae": "x"}, "unknown annotation switchyard.dev/imgae"),
        ({}, {"switchyard.dev/proxy-port": "9090"}, "both 9090"),
    ],
)
def test_conflicts_are_refused_naming_the_workload_and_nothing_is_written(spec, annotations, reason):
    bad = pod("broken", **spec)
    bad["metadata"]["annotations"] = annotations
    stream = yaml.safe_dump(pod("fine")) + "---\n" + yaml.safe_dump(bad)
    out = inject("-", stdin=stream, ok=False)
    assert out.returncode == 1
    assert out.stdout == "", "a refused stream writes nothing, so a pipe into kubectl applies nothing"
    assert "Pod/broken (namespace shop): " in out.stderr and reason in out.stderr, out.stderr


def test_an_app_that_keeps_its_own_variables_outside_the_targets_is_injected():
    spec = {"containers": [{"name": "app"}, {"name": "proxy", "env": [{"name": "HTTPS_PROXY", "value": "http://corp:3128"}]}]}
    doc = pod("mixed", **spec)
    doc["metadata"]["annotations"] = {"switchyard.dev/env-targets": "app"}
    [result] = docs(inject("-", stdin=yaml.safe_dump(doc)).stdout)
    assert result["spec"]["containers"][1]["env"] == [{"name": "HTTPS_PROXY", "value": "http://corp:3128"}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", "document 1"),
        ("kind: Pod\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n", "document 2"),
        # An alias bomb stays bounded (the parser's budget), refused rather than expanded.
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "document 1"),
        ('{"kind": "Pod", "spec": ', "document 1"),
    ],
)
def test_unreadable_input_is_an_error_naming_the_document(text, message):
    out = inject("-", stdin=text, ok=False)
    assert out.returncode == 1 and out.stdout == ""
    assert message in out.stderr and "not readable" in out.stderr, out.stderr


def test_opt_out_by_label_and_null_lists():
    doc = pod("labelled")
    doc["metadata"]["labels"] = {"switchyard.dev/inject": "disabled"}
    text = yaml.safe_dump(doc)
    out = inject("-", stdin=text)
    assert out.stdout == text and "opted_out" in out.stderr
    # `initContainers: null` (as some generators write) is an absent list, not an error.
    doc = pod("nulls", initContainers=None, volumes=None)
    [result] = docs(inject("-", stdin=yaml.safe_dump(doc)).stdout)
    assert [c["name"] for c in result["spec"]["initContainers"]] == ["switchyard"]
    validate(result)


def test_empty_and_comment_only_input_passes_through():
    for text in ["", "\n", "# nothing here\n---\n"]:
        assert inject("-", stdin=text).stdout == text


def test_missing_file_and_bad_flags_are_clear_errors(tmp_path):
    out = inject(str(tmp_path / "absent.yaml"), ok=False)
    assert out.returncode == 1 and "absent.yaml" in out.stderr
    out = inject("--mode", "sidecar", "-", stdin="", ok=False)
    assert out.returncode == 2 and "--mode" in out.stderr
