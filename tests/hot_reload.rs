//! Hot reload through the real binary: plain rewrites, Kubernetes ConfigMap symlink swaps,
//! SIGHUP, secret-file rotation, and a bad file never replacing a good one.

#[path = "support/gateway.rs"]
mod harness;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use harness::{chat, eventually, mock, Gateway};
use switchyard_mock::MockHandle;

/// Routes `vk-app` to the mock at `to`, with the provider key read from `key_file` if given.
fn routing_to(to: &MockHandle, key: &str) -> String {
    format!(
        r#"
providers:
  up: {{ kind: openai-compatible, base_url: "http://{addr}/v1", {key} }}
virtual_keys:
  vk-app: {{ provider: up }}
"#,
        addr = to.addr
    )
}

async fn send(gw: &Gateway) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .json(&chat("m", false))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Sends requests until one lands on `mock`; returns how long the switch took.
async fn switched_to(gw: &Gateway, mock: &MockHandle) -> Option<Duration> {
    eventually(Duration::from_secs(5), || async {
        send(gw).await == 200 && !mock.requests().is_empty()
    })
    .await
}

#[tokio::test]
async fn a_rewrite_changes_routing_within_a_second_and_a_bad_file_keeps_the_old() {
    let (a, b) = (mock().await, mock().await);
    let gw = Gateway::start(&routing_to(&a, "api_key: ka")).await;
    assert_eq!(send(&gw).await, 200);
    assert_eq!(a.requests().len(), 1);

    gw.rewrite_config(&routing_to(&b, "api_key: kb"));
    let took = switched_to(&gw, &b).await.expect("reload picked up");
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    gw.expect_metric(
        "switchyard_config_reloads_total",
        &[r#"result="success""#],
        1.0,
    )
    .await;

    // An invalid file (unknown provider) is refused; routing stays on b.
    gw.rewrite_config("virtual_keys:\n  vk-app: { provider: nowhere }\n");
    let counted = eventually(Duration::from_secs(5), || async {
        gw.metric("switchyard_config_reloads_total", &[r#"result="error""#])
            .await
            == 1.0
    })
    .await;
    assert!(counted.is_some(), "error reload not counted:\n{}", gw.log());
    let before = b.requests().len();
    assert_eq!(send(&gw).await, 200);
    assert_eq!(b.requests().len(), before + 1);
    let cfg = gw.admin_json("/config").await;
    assert!(
        cfg["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("nowhere")),
        "{cfg}"
    );
}

#[tokio::test]
async fn one_refused_save_is_counted_once() {
    let a = mock().await;
    let gw = Gateway::start(&routing_to(&a, "api_key: ka")).await;
    gw.rewrite_config("virtual_keys:\n  vk-app: { provider: nowhere }\n");
    let refused = || async {
        gw.metric("switchyard_config_reloads_total", &[r#"result="error""#])
            .await
    };
    let counted = eventually(Duration::from_secs(5), || async { refused().await >= 1.0 }).await;
    assert!(counted.is_some(), "error reload not counted:\n{}", gw.log());
    // The watcher retries a refused reload once and more events may follow the save: still
    // the same bytes, still one refusal.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(refused().await, 1.0, "{}", gw.log());
    assert_eq!(
        gw.log().matches("config reload refused").count(),
        1,
        "{}",
        gw.log()
    );
    assert_eq!(send(&gw).await, 200);
}

/// Replays kubelet's AtomicWriter: a new timestamped dir, `..data_tmp` → it, renamed over
/// `..data`, the old dir removed. `switchyard.yaml` is a symlink to `..data/switchyard.yaml`.
struct ConfigMapDir {
    generation: u32,
}

impl ConfigMapDir {
    fn update(&mut self, dir: &Path, text: &str) {
        self.generation += 1;
        let ts = format!(
            "..2026_11_25_00_00_{:02}.{}",
            self.generation, self.generation
        );
        std::fs::create_dir(dir.join(&ts)).unwrap();
        std::fs::write(dir.join(&ts).join("switchyard.yaml"), text).unwrap();
        let old = std::fs::read_link(dir.join("..data")).ok();
        symlink(&ts, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        if !dir.join("switchyard.yaml").exists() {
            symlink("..data/switchyard.yaml", dir.join("switchyard.yaml")).unwrap();
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(dir.join(old)).unwrap();
        }
    }
}

#[tokio::test]
async fn three_configmap_symlink_swaps_are_each_picked_up() {
    let mocks = [mock().await, mock().await, mock().await, mock().await];
    let mut cm = ConfigMapDir { generation: 0 };
    let addr_line = |gw: &Gateway| {
        format!(
            "listen: {}\nadmin_listen: {}\nthreads: 1\n",
            gw.addr, gw.admin
        )
    };
    // Start on a plain file, then turn the directory into a ConfigMap mount.
    let mut gw = Gateway::start(&routing_to(&mocks[0], "api_key: k0")).await;
    let dir = gw.config_path.parent().unwrap().to_path_buf();
    std::fs::remove_file(&gw.config_path).unwrap();
    let prefix = addr_line(&gw);
    cm.update(
        &dir,
        &format!("{prefix}{}", routing_to(&mocks[0], "api_key: k0")),
    );
    for (i, target) in mocks.iter().enumerate().skip(1) {
        cm.update(
            &dir,
            &format!("{prefix}{}", routing_to(target, &format!("api_key: k{i}"))),
        );
        let took = switched_to(&gw, target).await;
        assert!(took.is_some(), "swap {i} not picked up:\n{}", gw.log());
        let seen = target.requests();
        assert_eq!(
            seen.last().unwrap().header("authorization"),
            Some(format!("Bearer k{i}").as_str())
        );
    }
    gw.expect_metric(
        "switchyard_config_reloads_total",
        &[r#"result="success""#],
        3.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_config_reloads_total",
        &[r#"result="error""#],
        0.0,
    )
    .await;
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn rotating_a_secret_file_swaps_the_key_without_restart() {
    let up = mock().await;
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("provider-key");
    std::fs::write(&key_file, "sk-first\n").unwrap();
    let gw = Gateway::start(&routing_to(
        &up,
        &format!("api_key_file: \"{}\"", key_file.display()),
    ))
    .await;
    assert_eq!(send(&gw).await, 200);
    assert_eq!(
        up.requests()[0].header("authorization"),
        Some("Bearer sk-first")
    );

    let tmp = secrets.path().join(".provider-key.tmp");
    std::fs::write(&tmp, "sk-second\n").unwrap();
    std::fs::rename(&tmp, &key_file).unwrap();
    let rotated = eventually(Duration::from_secs(5), || async {
        send(&gw).await == 200
            && up
                .requests()
                .last()
                .and_then(|r| r.header("authorization").map(str::to_string))
                .as_deref()
                == Some("Bearer sk-second")
    })
    .await;
    assert!(rotated.is_some(), "key not rotated:\n{}", gw.log());
    assert!(!gw.log().contains("sk-second"));
}

#[tokio::test]
async fn sighup_reloads_what_no_watcher_can_see() {
    let (a, b) = (mock().await, mock().await);
    let gw = Gateway::start(&routing_to(&a, "api_key: ka")).await;
    // Make the config a symlink into a directory nobody watches: edits there raise no event in
    // the config's directory, so only SIGHUP (or the 30 s poll) can pick them up.
    let elsewhere = tempfile::tempdir().unwrap();
    let real = elsewhere.path().join("real.yaml");
    std::fs::copy(&gw.config_path, &real).unwrap();
    let link = gw.config_path.with_extension("link");
    symlink(&real, &link).unwrap();
    std::fs::rename(&link, &gw.config_path).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let text = std::fs::read_to_string(&real)
        .unwrap()
        .replace(&a.addr.to_string(), &b.addr.to_string());
    std::fs::write(&real, text).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(send(&gw).await, 200);
    assert!(b.requests().is_empty(), "changed without SIGHUP");
    gw.signal("HUP");
    assert!(switched_to(&gw, &b).await.is_some(), "{}", gw.log());
    assert!(gw.log().contains("SIGHUP"));
}
