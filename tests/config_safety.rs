//! Issue 17 finding 3: an empty, truncated or serve-nothing config never replaces the live one
//! (`: > switchyard.yaml` under load used to turn every request into a 401), and `check`
//! refuses what a reload would refuse.

#[path = "support/gateway.rs"]
mod harness;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::{chat, check_config, eventually, mock, Gateway};
use switchyard_mock::MockHandle;

fn serving(to: &MockHandle) -> String {
    format!(
        "providers:\n  up: {{ kind: openai-compatible, base_url: \"http://{}/v1\" }}\nvirtual_keys:\n  vk-app: {{ provider: up }}\n",
        to.addr
    )
}

#[test]
fn check_refuses_an_empty_file_and_dev_null() {
    for text in ["", "  \n\n", "# only a comment\n# and another\n", "---\n"] {
        let (ok, out, err) = check_config(text);
        assert!(!ok, "{text:?} was accepted: {out}");
        assert!(err.contains("the config file is empty"), "{text:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "/dev/null"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "/dev/null was accepted");
    assert!(err.contains("the config file is empty"), "{err}");
}

#[test]
fn run_refuses_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, "# emptied\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = status.expect("switchyard run served an empty config");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("the config file is empty"), "{err}");
}

/// Portkey's `request_timeout` is in milliseconds; a value below 100 is accepted as written, with
/// a warning naming the path (issue 19), and `check` still succeeds.
#[test]
fn check_warns_about_a_request_timeout_that_looks_like_seconds() {
    let text = "providers:\n  up: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\nvirtual_keys:\n  vk-app: { provider: up }\nconfigs:\n  c: { virtual_key: vk-app, request_timeout: 30 }\n";
    let (ok, out, err) = check_config(text);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("warning: configs.c.request_timeout: 30 ms is very short"),
        "{err}"
    );
    let (ok, _, err) = check_config(&text.replace("30 }", "30000 }"));
    assert!(ok && !err.contains("warning"), "{err}");
}

/// Issue 19: a config checks where its secrets are absent (a laptop, CI, the GitOps repo):
/// unset variables and missing key, CA, token and price files are warnings naming their path,
/// and `--strict` refuses them as the gateway does at start. Every shipped config passes as
/// written.
#[test]
fn check_warns_about_absent_secrets_and_strict_refuses_them() {
    let check = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("check")
            .args(args)
            .env_remove("SY_ABSENT_KEY")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "providers:\n  p: { kind: openai, api_key: \"${SY_ABSENT_KEY}\" }\n  q: { kind: anthropic, api_key_file: absent/key }\nvirtual_keys:\n  vk: { provider: p }\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let (ok, err) = check(&[file]);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: providers.p.api_key: environment variable SY_ABSENT_KEY is not set")
            && err.contains("warning: providers.q.api_key_file: cannot read"),
        "{err}"
    );
    let (ok, err) = check(&["--strict", file]);
    assert!(!ok, "--strict accepted an absent secret: {err}");
    assert!(err.contains("error: providers.p.api_key"), "{err}");
    for shipped in [
        "k8s/base/switchyard/switchyard.yaml",
        "conf/switchyard.yaml",
        "conf/demo.yaml",
        "conf/examples/guardrails.yaml",
        "conf/examples/limits.yaml",
        "conf/examples/production.yaml",
        "conf/examples/portkey-tutorial.yaml",
    ] {
        let (ok, err) = check(&[shipped]);
        assert!(ok, "{shipped}: {err}");
    }
}

#[test]
fn check_refuses_a_config_without_providers_unless_passthrough_serves() {
    // No virtual keys: passthrough is on by default and serves each caller's own key.
    for text in ["providers: {}\n", "threads: 1\n"] {
        let (ok, _, err) = check_config(text);
        assert!(ok, "{text:?}: {err}");
        let off = format!("{text}passthrough: {{ enabled: false }}\n");
        let (ok, _, err) = check_config(&off);
        assert!(!ok, "{off:?} was accepted");
        assert!(err.contains("providers: no provider is defined"), "{err}");
    }
}

#[test]
fn check_refuses_a_config_where_every_request_would_be_a_401() {
    let provider =
        "providers:\n  up: { kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }\n";
    for extra in [
        "passthrough: { enabled: false }\n",
        "virtual_keys:\n  vk-a: { provider: up, disabled: true }\n",
    ] {
        let (ok, _, err) = check_config(&format!("{provider}{extra}"));
        assert!(!ok, "{extra:?} was accepted");
        assert!(
            err.contains("virtual_keys: no enabled virtual key") && err.contains("401"),
            "{err}"
        );
    }
    // A default provider that passthrough cannot reach without a custom host is refused.
    let (ok, _, err) =
        check_config("passthrough: { enabled: true, default_provider: azure-openai }\n");
    assert!(
        !ok && err.contains("passthrough.default_provider: azure-openai has no standard base URL"),
        "{err}"
    );
    let (ok, _, err) = check_config("passthrough: { enabled: true, default_provider: OpenAI }\n");
    assert!(!ok && err.contains("unknown provider id"), "{err}");
    // Providers without virtual keys: passthrough is on by default, and check says so.
    let (ok, out, err) = check_config(provider);
    assert!(ok, "{err}");
    assert!(
        format!("{out}{err}").contains("warning: passthrough"),
        "{out}{err}"
    );
    // A default_config serves requests without a key: accepted.
    let (ok, _, err) = check_config(&format!(
        "{provider}virtual_keys:\n  vk-a: {{ provider: up, disabled: true }}\ndefault_config: c\nconfigs:\n  c: {{ virtual_key: vk-a }}\n"
    ));
    assert!(ok, "{err}");
}

async fn reload_errors(gw: &Gateway) -> f64 {
    gw.metric("switchyard_config_reloads_total", &[r#"result="error""#])
        .await
}

/// Waits for one more refused reload than `before`, then returns `/config`'s error.
async fn refused(gw: &Gateway, before: f64) -> String {
    let counted = eventually(Duration::from_secs(5), || async {
        reload_errors(gw).await > before
    })
    .await;
    assert!(counted.is_some(), "refusal not counted:\n{}", gw.log());
    let cfg = gw.admin_json("/config").await;
    cfg["last_reload_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_empty_truncated_or_keyless_file_never_replaces_the_live_config_under_load() {
    let up = mock().await;
    let gw = Gateway::start(&serving(&up)).await;
    let hash_before = gw.admin_json("/config").await["hash"].clone();

    // Load: two clients in a loop, bounded in count, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (stop, ok, bad, url) = (
            stop.clone(),
            ok.clone(),
            bad.clone(),
            gw.url("/v1/chat/completions"),
        );
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let status = client
                    .post(&url)
                    .bearer_auth("vk-app")
                    .json(&chat("m", false))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let counter = if status == 200 { &ok } else { &bad };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // `: > switchyard.yaml`: truncated in place, not replaced.
    std::fs::write(&gw.config_path, "").unwrap();
    let error = refused(&gw, 0.0).await;
    assert!(error.contains("the config file is empty"), "{error}");

    // A file cut before `virtual_keys:` (what a truncated write parses into).
    let before = reload_errors(&gw).await;
    let cut = format!(
        "listen: {}\nadmin_listen: {}\nthreads: 1\nproviders:\n  up: {{ kind: openai-compatible, base_url: \"http://{}/v1\" }}\n",
        gw.addr, gw.admin, up.addr
    );
    std::fs::write(&gw.config_path, cut).unwrap();
    let error = refused(&gw, before).await;
    assert!(
        error.contains("virtual_keys: the new config has no enabled virtual key"),
        "{error}"
    );

    // No providers at all (passthrough off: else the file would serve callers' own keys, and
    // is refused above for dropping every key).
    let before = reload_errors(&gw).await;
    gw.rewrite_config("providers: {}\npassthrough: { enabled: false }\n");
    let error = refused(&gw, before).await;
    assert!(
        error.contains("providers: no provider is defined"),
        "{error}"
    );

    // The console shows the same refusal.
    let console = gw.admin_json("/api/console").await;
    assert!(
        console.to_string().contains("no provider is defined"),
        "{console}"
    );

    // Let the load run on the last good config a little longer, then stop it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert!(ok > 0, "no request was sent");
    assert_eq!(
        bad,
        0,
        "{bad} of {} requests failed during the bad reloads",
        ok + bad
    );
    let hash_after = gw.admin_json("/config").await["hash"].clone();
    assert_eq!(hash_before, hash_after, "the live config changed");
    assert!(gw.log().contains("config reload refused"), "{}", gw.log());
}
