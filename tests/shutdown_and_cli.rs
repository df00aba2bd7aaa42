//! SIGTERM drains in-flight streams before exiting 0; `switchyard check` reports YAML paths.

#[path = "support/gateway.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use harness::{chat, Gateway};

#[tokio::test]
async fn sigterm_during_a_stream_lets_it_finish_then_exits_zero() {
    let mock = harness::mock().await;
    let mut gw = Gateway::start(&format!(
        r#"
shutdown_grace: 10s
providers:
  up: {{ kind: openai-compatible, base_url: "http://{}/fault/chunks=10,chunk_delay_ms=100/v1" }}
virtual_keys:
  vk-app: {{ provider: up }}
"#,
        mock.addr
    ))
    .await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-app")
        .json(&chat("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut body = String::new();
    // Read the first content event, then ask the gateway to stop.
    while let Some(chunk) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if body.contains("tok0") {
            break;
        }
    }
    gw.signal("TERM");
    // Draining: not ready any more, while the stream goes on.
    let not_ready = gw.until_not_ready(Duration::from_secs(3)).await;
    assert!(not_ready.is_some(), "/readyz still 200 while draining");
    while let Some(chunk) = stream.next().await {
        body.push_str(&String::from_utf8_lossy(
            &chunk.expect("stream cut during drain"),
        ));
    }
    for i in 0..10 {
        assert!(body.contains(&format!("tok{i}")), "missing tok{i}: {body}");
    }
    assert!(body.contains("[DONE]"));
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        gw.log()
    );
    assert_eq!(mock.stats().streams_completed, 1);
}

#[tokio::test]
async fn sigterm_when_idle_exits_promptly() {
    let mut gw = Gateway::start(
        "providers:\n  up: { kind: openai-compatible, base_url: \"http://127.0.0.1:9/v1\" }\n",
    )
    .await;
    let started = std::time::Instant::now();
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    // Not pingora's default 300 s grace sleep.
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn check_prints_each_error_with_its_yaml_path() {
    let (ok, _, err) = harness::check_config(
        r#"
providers:
  p: { kind: openai-compatible, base_url: "http://127.0.0.1:1/v1" }
virtual_keys:
  vk-a: { provider: p }
configs:
  chat:
    strategy: { mode: fallback }
    targets:
      - virtual_key: vk-a
      - virtual_key: vk-cluade
"#,
    );
    assert!(!ok);
    assert!(
        err.contains("configs.chat.targets[1].virtual_key") && err.contains("vk-cluade"),
        "{err}"
    );
    let (ok, _, err) =
        harness::check_config("providers:\n  p: { kind: openai, api_key: k, falback: 1 }\n");
    assert!(!ok);
    assert!(err.contains("falback"), "{err}");
}

#[test]
fn check_accepts_the_shipped_configs() {
    for file in ["conf/switchyard.yaml", "conf/demo.yaml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("check")
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The admin port can answer before the proxy's listener is bound (the services start side by
/// side, and pingora retries a bind whose port is taken): `/readyz` says 503 until the proxy
/// accepts connections.
#[tokio::test]
async fn not_ready_until_the_proxy_listener_accepts() {
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", harness::free_port())
        .parse()
        .unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", harness::free_port())
        .parse()
        .unwrap();
    // Bound but not listening, without SO_REUSEADDR: the gateway's bind fails (and is retried
    // every second) and a connection to the port is refused.
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind(listen).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: {listen}\nadmin_listen: {admin}\nthreads: 1\nproviders:\n  up: {{ kind: openai-compatible, base_url: \"http://127.0.0.1:9/v1\" }}\nvirtual_keys:\n  vk: {{ provider: up }}\n"
        ),
    )
    .unwrap();
    /// Stops the gateway however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Killed(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["run", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let readyz = || async {
        match client.get(format!("http://{admin}/readyz")).send().await {
            Ok(r) => Some((r.status().as_u16(), r.text().await.unwrap_or_default())),
            Err(_) => None,
        }
    };
    let mut answered = None;
    for _ in 0..100 {
        answered = readyz().await;
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = answered.expect("the admin port answers");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not accepting"), "{body}");
    drop(holder);
    let ready = harness::eventually(Duration::from_secs(10), || async {
        readyz().await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert!(ready.is_some(), "never ready once the port was free");
}
