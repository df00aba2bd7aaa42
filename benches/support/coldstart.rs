//! Cold start and concurrency against an HTTPS provider: the mock provider as a process with
//! `--tls` and a handshake delay ([`HANDSHAKE_DELAY_MS`], slept after each TCP accept before
//! the TLS handshake) standing in for a real provider's network round trips, so a new upstream
//! connection costs what it costs in production and a reused one does not.
//!
//! - **first request on a fresh gateway**: start a gateway, wait for `/readyz` 200, time one
//!   chat request; `prewarm: 0` against `prewarm: 1`, alternating, median of the repetitions
//!   (also the time from spawn to ready, which pre-warming lengthens by one connection);
//! - **connections for N concurrent streams**: a fresh gateway per protocol (`http2: off`, then
//!   the default `auto`, which negotiates h2 by ALPN), N slow streams at once; the connections
//!   the mock accepted (`/_mock/stats` `total_connections`, before/after) and the ones the
//!   gateway opened (`switchyard_upstream_connect_seconds_count`);
//! - **added latency over TLS at concurrency 1**: client → gateway (plain HTTP/1.1) → TLS mock
//!   against client → TLS mock direct (reqwest, rustls, trusting the mock's CA), warm
//!   connections, interleaved request by request; h2 upstream (direct over h2 too) and
//!   HTTP/1.1 upstream (direct over HTTP/1.1). Everything on CPU 0, as the other
//!   concurrency-1 figures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{
    chat_body, command, loopback_port, median, micros, spawn_mock, wait_port, Figures, Plan, Proc,
};

/// The mock's delay before each TLS handshake: a provider's round trips.
pub const HANDSHAKE_DELAY_MS: u64 = 20;

/// The TLS mock provider process and clients that trust its CA.
struct TlsMock {
    _proc: Proc,
    addr: SocketAddr,
    ca: PathBuf,
    /// Direct clients: ALPN offers h2 and http/1.1 (h2 is chosen), or only http/1.1.
    h2: reqwest::Client,
    h1: reqwest::Client,
}

impl TlsMock {
    fn start(bin: &Path, dir: &Path) -> TlsMock {
        let ca = dir.join("mock-ca.pem");
        let delay = HANDSHAKE_DELAY_MS.to_string();
        let (proc, addr) = spawn_mock(
            bin,
            &[
                "--tls".as_ref(),
                "--ca-out".as_ref(),
                ca.as_os_str(),
                "--handshake-delay-ms".as_ref(),
                delay.as_ref(),
            ],
        );
        let pem = std::fs::read(&ca).expect("the mock's CA");
        let cert = reqwest::Certificate::from_pem(&pem).expect("the mock's CA");
        let build = |h1_only: bool| {
            let b = reqwest::Client::builder()
                .add_root_certificate(cert.clone())
                .tcp_nodelay(true);
            let b = if h1_only { b.http1_only() } else { b };
            b.build().expect("client")
        };
        TlsMock {
            _proc: proc,
            addr,
            ca,
            h2: build(false),
            h1: build(true),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `/_mock/stats` (through the h2 client's one kept connection).
    async fn stats(&self) -> serde_json::Value {
        match self.h2.get(self.url("/_mock/stats")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }
}

/// A gateway whose providers are on the TLS mock.
struct TlsGateway {
    _proc: Proc,
    addr: SocketAddr,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TlsGateway {
    /// Starts one with `providers` (name, extra flow-map fields; virtual key `vk-NAME` each)
    /// on `cpu`, and waits for `/readyz` 200: returns it and the time from spawn to ready.
    async fn start(
        bin: &Path,
        mock: &TlsMock,
        cpu: &str,
        providers: &[(&str, &str)],
    ) -> (Self, Duration) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addr, admin) = (loopback_port(), loopback_port());
        let (port, ca) = (mock.addr.port(), mock.ca.display());
        let mut yaml = format!("listen: {addr}\nadmin_listen: {admin}\nthreads: 1\nproviders:\n");
        for (name, extra) in providers {
            yaml += &format!("  {name}: {{ kind: openai-compatible, base_url: \"https://localhost:{port}/v1\", api_key: sk-bench, ca_file: \"{ca}\"{extra} }}\n");
        }
        yaml += "virtual_keys:\n";
        for (name, _) in providers {
            yaml += &format!("  vk-{name}: {{ provider: {name} }}\n");
        }
        let config = dir.path().join("tls.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let started = Instant::now();
        let child = command(bin, Some(cpu))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the gateway");
        let gateway = TlsGateway {
            _proc: Proc { child },
            addr,
            admin,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let ready = format!("http://{admin}/readyz");
        let deadline = started + Duration::from_secs(30);
        loop {
            let ok = client
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the TLS gateway never turned ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready_in = started.elapsed();
        wait_port(addr).await;
        (gateway, ready_in)
    }

    fn chat(&self, client: &reqwest::Client, key: &str, stream: bool) -> reqwest::RequestBuilder {
        client
            .post(format!("http://{}/v1/chat/completions", self.addr))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(chat_body(stream))
    }

    /// Upstream connections the gateway opened to `provider` (every protocol; those a
    /// `trigger` opened, `request` or `prewarm`, or all).
    async fn connects(&self, provider: &str, trigger: Option<&str>) -> f64 {
        let url = format!("http://{}/metrics", self.admin);
        let text = match reqwest::get(url).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => return f64::NAN,
        };
        let label = format!("provider=\"{provider}\"");
        text.lines()
            .filter(|l| l.starts_with("switchyard_upstream_connect_seconds_count{"))
            .filter(|l| l.contains(&label))
            .filter(|l| trigger.is_none_or(|t| l.contains(&format!("trigger=\"{t}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    }
}

/// Runs the section; every figure's name starts with `coldstart_` or `tls_`.
pub async fn run(bin: &Path, plan: Plan) -> Figures {
    eprintln!(
        "cold start and concurrency: TLS mock provider, {HANDSHAKE_DELAY_MS} ms handshake delay"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mock = TlsMock::start(bin, dir.path());
    let mut figures = Figures::new();
    figures.insert("tls_handshake_delay_ms".into(), HANDSHAKE_DELAY_MS as f64);
    figures.extend(cold_starts(bin, &mock, plan).await);
    // HTTP/1.1 first: the mock's `max_concurrent_streams` is a maximum since it started.
    for (label, extra) in [("http1", ", http2: off"), ("h2", ", http2: auto")] {
        figures.extend(stream_connections(bin, &mock, plan, label, extra).await);
    }
    figures.extend(tls_latency(bin, &mock, plan).await);
    figures
}

/// The first request on a freshly started gateway, `prewarm: 0` against `prewarm: 1`.
async fn cold_starts(bin: &Path, mock: &TlsMock, plan: Plan) -> Figures {
    let mut samples: Vec<(String, f64)> = Vec::new();
    for _ in 0..plan.coldstart_reps {
        for prewarm in [0, 1] {
            let extra = format!(", prewarm: {prewarm}");
            let (gw, ready) = TlsGateway::start(bin, mock, "1", &[("up", &extra)]).await;
            let client = reqwest::Client::new();
            let mut times = [f64::NAN; 2];
            for t in times.iter_mut() {
                let started = Instant::now();
                let ok = match gw.chat(&client, "vk-up", false).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    *t = started.elapsed().as_secs_f64() * 1e3;
                }
            }
            let p = format!("prewarm_{prewarm}");
            samples.push((format!("coldstart_ready_ms.{p}"), ready.as_secs_f64() * 1e3));
            samples.push((format!("coldstart_first_request_ms.{p}"), times[0]));
            samples.push((format!("coldstart_second_request_ms.{p}"), times[1]));
            let by_requests = gw.connects("up", Some("request")).await;
            samples.push((
                format!("coldstart_connections_by_requests.{p}"),
                by_requests,
            ));
            drop(gw);
        }
    }
    let mut figures = Figures::new();
    for (name, _) in &samples {
        if !figures.contains_key(name) {
            let of_name = samples.iter().filter(|(n, _)| n == name).map(|(_, v)| *v);
            figures.insert(name.clone(), median(of_name.collect()));
        }
    }
    figures.insert("coldstart_repetitions".into(), plan.coldstart_reps as f64);
    figures
}

/// `plan.tls_streams` concurrent slow streams through a fresh gateway whose provider has
/// `extra` (`http2: off` or `auto`): the upstream connections that took.
async fn stream_connections(
    bin: &Path,
    mock: &TlsMock,
    plan: Plan,
    label: &str,
    extra: &str,
) -> Figures {
    let (gw, _) = TlsGateway::start(bin, mock, "1", &[("up", extra)]).await;
    let before = mock.stats().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.tls_streams)
        .build()
        .expect("client");
    let fault = format!(
        "chunks={},chunk_delay_ms={}",
        plan.tls_stream_chunks, plan.tls_chunk_delay_ms
    );
    let started = Instant::now();
    let streams = (0..plan.tls_streams).map(|_| {
        let request = gw
            .chat(&client, "vk-up", true)
            .header("x-mock-fault", &fault);
        async move {
            match request.send().await {
                Ok(r) if r.status() == 200 => r.text().await.is_ok_and(|t| t.contains("[DONE]")),
                _ => false,
            }
        }
    });
    let done = futures_util::future::join_all(streams).await;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    let after = mock.stats().await;
    let delta =
        |k: &str| after[k].as_f64().unwrap_or(f64::NAN) - before[k].as_f64().unwrap_or(f64::NAN);
    let failed = done.iter().filter(|ok| !**ok).count();
    [
        (
            "tls_streams_upstream_connections_mock",
            delta("total_connections"),
        ),
        (
            "tls_streams_upstream_connections_gateway",
            gw.connects("up", None).await,
        ),
        ("tls_streams_h2_connections_mock", delta("h2_connections")),
        (
            "tls_streams_full_handshakes_mock",
            delta("tls_handshakes_full"),
        ),
        (
            "tls_streams_max_concurrent_per_connection",
            after["max_concurrent_streams"].as_f64().unwrap_or(f64::NAN),
        ),
        ("tls_streams_failed", failed as f64),
        ("tls_streams_wall_ms", wall_ms),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{k}.{label}"), v))
    .chain([("tls_streams".to_string(), plan.tls_streams as f64)])
    .collect()
}

/// Builds one path's next request.
type Request<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;

/// Added latency at concurrency 1 over TLS, warm connections: direct against the gateway, per
/// upstream protocol, interleaved request by request.
async fn tls_latency(bin: &Path, mock: &TlsMock, plan: Plan) -> Figures {
    let providers = [("h2", ", prewarm: 1"), ("h1", ", http2: off, prewarm: 1")];
    let (gw, _) = TlsGateway::start(bin, mock, "0", &providers).await;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let direct = |c: &reqwest::Client| {
        c.post(mock.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(chat_body(false))
    };
    let paths: [(&str, Request<'_>); 4] = [
        ("direct", Box::new(|| direct(&mock.h2))),
        ("switchyard", Box::new(|| gw.chat(&client, "vk-h2", false))),
        ("direct_h1", Box::new(|| direct(&mock.h1))),
        (
            "switchyard_h1",
            Box::new(|| gw.chat(&client, "vk-h1", false)),
        ),
    ];
    let mut hists: Vec<Histogram<u64>> = (0..paths.len())
        .map(|_| Histogram::<u64>::new(3).expect("histogram"))
        .collect();
    let warm_up = 20;
    for n in 0..warm_up + plan.tls_sequential {
        for (i, (_, request)) in paths.iter().enumerate() {
            let started = Instant::now();
            let ok = match request().send().await {
                Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok && n >= warm_up {
                let _ = hists[i].record(started.elapsed().as_micros() as u64);
            }
        }
    }
    let mut figures = Figures::new();
    for (h, (name, _)) in hists.iter().zip(&paths) {
        figures.insert(format!("tls_latency_p50_us.{name}"), micros(h, 0.5));
        figures.insert(format!("tls_latency_p99_us.{name}"), micros(h, 0.99));
    }
    for q in ["p50", "p99"] {
        for (via, base) in [("switchyard", "direct"), ("switchyard_h1", "direct_h1")] {
            let get = |p: &str| figures[&format!("tls_latency_{q}_us.{p}")];
            let added = get(via) - get(base);
            figures.insert(format!("added_tls_latency_{q}_us.{via}"), added);
        }
    }
    figures
}
