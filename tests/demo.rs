//! `switchyard demo` tells the truth: started as a user would (the real binary, ports from its
//! flags, ephemeral here), its printed walk-through is run command by command and each claim is
//! checked — the numbers it prints are the config's, the breaker opens after the number of slow
//! calls it says (from a quiet start and after the two first requests), a healed primary is
//! probed after the time it says, and the access log stays off the terminal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `switchyard demo`; killed when dropped.
struct Demo {
    child: Child,
    /// Every line it printed on stdout so far.
    stdout: Arc<Mutex<Vec<String>>>,
    gateway: String,
    admin: String,
    primary: String,
    /// Its TMPDIR: where `switchyard demo` puts the request store (one per demo).
    tmp: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The text between `before` and the next `after` in `text`.
fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in:\n{text}"))
        + before.len();
    let len = text[start..]
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} after {before:?} in:\n{text}"));
    &text[start..start + len]
}

impl Demo {
    /// Starts `switchyard demo` in `dir` with `extra` flags; returns once it printed its
    /// walk-through and its admin port answers.
    fn start(dir: &Path, extra: &[&str]) -> Demo {
        let (listen, admin) = (free_port(), free_port());
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .current_dir(dir)
            .env("TMPDIR", tmp.path())
            .args(["demo", "--mock-ports", "0,0"])
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchyard demo");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = loop {
            let text = stdout.lock().unwrap().join("\n");
            if text.contains("Ctrl-C stops it.") {
                break text;
            }
            assert!(Instant::now() < deadline, "no walk-through: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let primary = between(&text, "mock providers on ", " (primary)").to_string();
        let demo = Demo {
            child,
            stdout,
            gateway: format!("127.0.0.1:{listen}"),
            admin: format!("127.0.0.1:{admin}"),
            primary,
            tmp,
        };
        assert!(
            text.contains(&format!("gateway on http://{}", demo.gateway)),
            "{text}"
        );
        demo
    }

    fn printed(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    async fn ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while client
            .get(format!("http://{}/readyz", self.admin))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "the demo never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The walk-through's chat request (streamed or not): status, time, the target that answered.
    async fn chat(&self, client: &reqwest::Client, stream: bool) -> (u16, Duration, String) {
        let started = Instant::now();
        let r = client
            .post(format!("http://{}/v1/chat/completions", self.gateway))
            .bearer_auth("vk-primary")
            .json(
                &serde_json::json!({"model": "gpt-4o-mini", "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let target = r
            .headers()
            .get("x-portkey-last-used-option-index")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let _ = r.bytes().await.unwrap();
        (status, started.elapsed(), target)
    }

    async fn fault(&self, client: &reqwest::Client, spec: &'static str) {
        let r = client
            .post(format!("http://{}/_mock/fault", self.primary))
            .body(spec)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// The walk-through's loop: ten requests; how many were slow before the first fast one,
    /// checking every later one is fast and answered by the secondary.
    async fn slow_until_open(&self, client: &reqwest::Client, timeout: Duration) -> usize {
        let mut slow = 0;
        let mut opened = false;
        for i in 0..10 {
            let (status, took, target) = self.chat(client, false).await;
            assert_eq!(status, 200, "request {i}");
            assert_eq!(
                target, "config.targets[1]",
                "request {i}: the secondary answers"
            );
            let was_slow = took >= timeout.mul_f64(0.9);
            if was_slow {
                assert!(!opened, "request {i} slow again after the breaker opened");
                assert!(took < timeout + Duration::from_millis(800), "{took:?}");
                slow += 1;
            } else {
                assert!(took < Duration::from_millis(500), "request {i}: {took:?}");
                opened = true;
            }
        }
        assert!(opened, "the breaker never opened");
        slow
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// From the repository's root (conf/demo.yaml on disk): the two first requests, then the gray
/// failure; the breaker opens after as many slow requests as printed for that case, and nothing
/// but the walk-through reaches stdout.
#[tokio::test]
async fn the_walkthrough_from_the_repository_root_happens_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = Demo::start(root, &["--access-log", log.to_str().unwrap()]);
    let client = client();
    demo.ready(&client).await;
    let text = demo.printed();
    assert!(
        text.contains("Config: conf/demo.yaml (hot-reloaded"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Access log: {}", log.display())),
        "{text}"
    );
    // conf/demo.yaml: request_timeout 1000, min_calls 5 over 30 s at 50%.
    assert!(text.contains("primary's\n  # 1 s timeout"), "{text}");
    let warm: usize = between(&text, "slow requests (", " while the two requests above")
        .parse()
        .unwrap();
    assert_eq!(warm, 3);

    assert_eq!(demo.chat(&client, false).await.0, 200);
    assert_eq!(demo.chat(&client, true).await.0, 200);
    demo.fault(&client, "headers_delay_ms=45000").await;
    let slow = demo.slow_until_open(&client, Duration::from_secs(1)).await;
    assert_eq!(
        slow, warm,
        "printed: {warm} slow requests with the first two in the window"
    );

    let metrics = client
        .get(format!("http://{}/metrics", demo.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchyard_circuit_state{target=\"config.targets[0]\"} 1"));
    assert!(metrics.contains("switchyard_fallbacks_total{config=\"chat\""));
    // Twelve requests went by: each is a line in the access log, none on the terminal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 12, "{logged}");
    let printed = demo.printed();
    assert!(
        printed.trim_end().ends_with("Ctrl-C stops it."),
        "stdout after the walk-through:\n{printed}"
    );
    // No access-log line on the terminal.
    assert!(!printed.contains("\"outcome\""), "{printed}");
    // The store has every request of the walk-through, in the demo's TMPDIR.
    let stored: serde_json::Value = client
        .get(format!(
            "http://{}/v1/analytics/requests?limit=200",
            demo.admin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["data"].as_array().map(Vec::len),
        Some(12),
        "{stored}"
    );
    assert!(demo.tmp.path().join("switchyard-demo-requests.db").exists());
}

/// From a quiet start, with an edited copy (open_s 2, request_timeout 500): the walk-through
/// prints the copy's numbers, the breaker opens after as many slow requests as it says, and the
/// healed primary answers again once the printed open time has passed.
#[tokio::test]
async fn an_edited_config_prints_its_own_numbers_and_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("conf/demo.yaml"))
        .unwrap()
        .replace("request_timeout: 1000", "request_timeout: 500")
        .replace(
            "circuit_breaker: { min_calls: 5, window_s: 30, open_s: 30 }",
            "circuit_breaker: { min_calls: 4, window_s: 30, open_s: 2 }",
        );
    assert!(text.contains("open_s: 2"), "conf/demo.yaml changed shape");
    let config = dir.path().join("demo.yaml");
    std::fs::write(&config, text).unwrap();
    let demo = Demo::start(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--access-log", "off"],
    );
    let client = client();
    demo.ready(&client).await;
    let printed = demo.printed();
    assert!(printed.contains("Access log: off"), "{printed}");
    assert!(
        printed.contains("primary's\n  # 0.5 s timeout"),
        "{printed}"
    );
    let cold: usize = between(&printed, "failed or slow: after ", "\n")
        .parse()
        .unwrap();
    assert_eq!(cold, 4);
    let open_s: u64 = between(
        &printed,
        "heal the primary: ",
        " s after the circuit opened",
    )
    .parse()
    .unwrap();
    assert_eq!(open_s, 2);

    demo.fault(&client, "headers_delay_ms=45000").await;
    let slow = demo
        .slow_until_open(&client, Duration::from_millis(500))
        .await;
    assert_eq!(
        slow, cold,
        "printed: after {cold} slow requests from a quiet start"
    );
    demo.fault(&client, "").await;
    tokio::time::sleep(Duration::from_secs(open_s) + Duration::from_millis(300)).await;
    let (status, took, target) = demo.chat(&client, false).await;
    assert_eq!((status, target.as_str()), (200, "config.targets[0]"));
    assert!(took < Duration::from_millis(500), "{took:?}");

    // The file it serves hot-reloads, its ${SWITCHYARD_DEMO_*} values still the flags'.
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("min_calls: 4", "min_calls: 6");
    std::fs::write(&config, edited).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = client
            .get(format!("http://{}/metrics", demo.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("switchyard_config_reloads_total{result=\"success\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(demo.chat(&client, false).await.0, 200);
}

/// Without conf/demo.yaml in the current directory the embedded copy serves, pointed at the
/// mocks this demo started.
#[tokio::test]
async fn elsewhere_the_embedded_copy_serves_the_mocks_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), &["--access-log", "off"]);
    let client = client();
    demo.ready(&client).await;
    assert!(demo.printed().contains("Config: the embedded copy"));
    let (status, _, target) = demo.chat(&client, false).await;
    assert_eq!((status, target.as_str()), (200, "config.targets[0]"));
}
