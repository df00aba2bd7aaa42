//! The benchmark driver: starts the mock provider, the bare-pingora floor and the gateway as
//! separate processes (pinned with `taskset` when available: proxies on CPU 1, mock and load on
//! CPU 0), then measures **direct** (client → mock), **floor** (client → pingora → mock) and
//! **switchyard** (client → gateway → mock) side by side, in interleaved rounds.
//!
//! Streams come from an in-process paced source ([`paced`]) so each chunk's transit time is
//! measured on one clock; load comes from lanes of raw HTTP/1.1 connections ([`load`]),
//! closed-loop or open-loop with latency correction.
//!
//! Used by `cargo bench --bench gateway` (release binaries, full mode) and by the smoke test
//! `tests/bench_smoke.rs` (debug binaries, quick mode: a few seconds, figures not judged).
#![allow(dead_code)]

#[path = "coldstart.rs"]
mod coldstart;
#[path = "load.rs"]
mod load;
#[path = "nginx.rs"]
mod nginx;
#[path = "paced.rs"]
mod paced;
#[path = "table.rs"]
mod table;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use hdrhistogram::Histogram;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rounds: usize,
    /// Sequential requests per target per round (concurrency 1).
    pub sequential: usize,
    /// Closed-loop throughput: concurrent clients and seconds per target per round.
    pub load_clients: usize,
    pub load_seconds: f64,
    /// Paced streams per target per round, and their shape.
    pub streams: usize,
    pub stream_chunks: usize,
    pub chunk_delay_ms: u64,
    /// Concurrent open streams for the memory figure.
    pub open_streams: usize,
    /// Open-loop search: rates tried between `open_lo` and `open_hi` requests/s, in
    /// `open_steps` bisections of `open_seconds` each; the bound on the corrected p99.
    pub open_lo: f64,
    pub open_hi: f64,
    pub open_steps: usize,
    pub open_seconds: f64,
    pub open_p99_limit_us: f64,
    /// The soak: seconds of steady mixed load on the gateway, its rate, and how often RSS is
    /// sampled.
    pub soak_seconds: f64,
    pub soak_rps: f64,
    pub soak_sample_seconds: f64,
    /// Cold start over TLS: gateway starts per `prewarm` setting; concurrent streams for the
    /// connection counts, and their shape; sequential requests per path at concurrency 1.
    pub coldstart_reps: usize,
    pub tls_streams: usize,
    pub tls_stream_chunks: usize,
    pub tls_chunk_delay_ms: u64,
    pub tls_sequential: usize,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            rounds: 5,
            sequential: 2000,
            load_clients: 64,
            load_seconds: 3.0,
            streams: 16,
            stream_chunks: 64,
            chunk_delay_ms: 20,
            open_streams: 1000,
            open_lo: 2000.0,
            open_hi: 34000.0,
            open_steps: 6,
            open_seconds: 2.0,
            open_p99_limit_us: 5000.0,
            soak_seconds: std::env::var("SWITCHYARD_BENCH_SOAK_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(600.0),
            soak_rps: 2000.0,
            soak_sample_seconds: 10.0,
            coldstart_reps: 5,
            tls_streams: 100,
            tls_stream_chunks: 8,
            tls_chunk_delay_ms: 20,
            tls_sequential: 2000,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            rounds: 2,
            sequential: 50,
            load_clients: 4,
            load_seconds: 0.3,
            streams: 2,
            stream_chunks: 8,
            chunk_delay_ms: 5,
            open_streams: 20,
            open_lo: 100.0,
            open_hi: 400.0,
            open_steps: 1,
            open_seconds: 0.3,
            open_p99_limit_us: 1e6,
            soak_seconds: 1.0,
            soak_rps: 100.0,
            soak_sample_seconds: 0.25,
            coldstart_reps: 2,
            tls_streams: 10,
            tls_stream_chunks: 2,
            tls_chunk_delay_ms: 5,
            tls_sequential: 30,
        }
    }
}

/// Where the binaries are.
pub struct Binaries {
    pub switchyard: PathBuf,
    pub floor: PathBuf,
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn command(bin: &Path, cpu: Option<&str>) -> Command {
    match cpu {
        Some(cpu) if has_taskset() => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu).arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

async fn wait_port(addr: SocketAddr) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} did not come up");
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

/// User + system CPU seconds a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here 0-based after ')' → 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// Pins this process (and the threads it starts afterwards) to CPU 0, beside the mock, so the
/// load driver never competes with the proxy under test on CPU 1.
pub fn pin_self_to_cpu0() {
    if has_taskset() {
        let _ = Command::new("taskset")
            .args(["-cp", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }
}

/// Moves every thread of a running process to `cpu`.
fn pin(pid: u32, cpu: &str) {
    if has_taskset() {
        let _ = Command::new("taskset")
            .args(["-a", "-cp", cpu, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn spawn_floor(bin: &Path, listen: SocketAddr, upstream: SocketAddr) -> Proc {
    Proc {
        child: command(bin, Some("1"))
            .args([
                "--listen",
                &listen.to_string(),
                "--upstream",
                &upstream.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the floor proxy"),
    }
}

fn loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The processes under test, and the paced stream source.
pub struct Setup {
    _mock: Proc,
    floor: Proc,
    floor_paced: Proc,
    gateway: Proc,
    _dir: tempfile::TempDir,
    pub direct: SocketAddr,
    pub floor_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    /// The gateway's admin port (the console's `/events`).
    pub admin_addr: SocketAddr,
    pub paced: paced::PacedServer,
    pub floor_paced_addr: SocketAddr,
    /// nginx in front of the same upstreams, unless it is not installed.
    pub nginx: Option<nginx::Nginx>,
}

/// `switchyard mock-provider` on CPU 0 with `extra` arguments, and the address it printed
/// (`http://` or, with `--tls`, `https://`).
fn spawn_mock(bin: &Path, extra: &[&std::ffi::OsStr]) -> (Proc, SocketAddr) {
    let mut child = command(bin, Some("0"))
        .args(["mock-provider", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the mock provider");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let addr = line
        .trim()
        .rsplit("://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("mock address in {line:?}"));
    (Proc { child }, addr)
}

impl Setup {
    pub async fn start(bins: &Binaries, plan: Plan) -> Setup {
        let (mock, direct) = spawn_mock(&bins.switchyard, &[]);
        let paced = paced::start(
            plan.stream_chunks,
            Duration::from_millis(plan.chunk_delay_ms),
        )
        .await;

        let floor_addr = loopback_port();
        let floor = spawn_floor(&bins.floor, floor_addr, direct);
        let floor_paced_addr = loopback_port();
        let floor_paced = spawn_floor(&bins.floor, floor_paced_addr, paced.addr);

        let dir = tempfile::tempdir().expect("tempdir");
        let gateway_addr = loopback_port();
        let admin = loopback_port();
        let config = dir.path().join("bench.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: {gateway_addr}\nadmin_listen: {admin}\nthreads: 1\nproviders:\n  mock: {{ kind: openai-compatible, base_url: \"http://{direct}/v1\", api_key: sk-bench }}\n  paced: {{ kind: openai-compatible, base_url: \"http://{}/v1\", api_key: sk-bench }}\nvirtual_keys:\n  vk-bench: {{ provider: mock, config: chat }}\n  vk-paced: {{ provider: paced }}\n  vk-cached: {{ provider: mock, config: cached }}\nconfigs:\n  chat:\n    virtual_key: vk-bench\n    timeouts: {{ idle_ms: 60000 }}\n  cached:\n    virtual_key: vk-bench\n    cache: {{ mode: simple, max_age: 3600 }}\n",
                paced.addr
            ) + &std::env::var("SWITCHYARD_BENCH_EXTRA_CONFIG").unwrap_or_default(),
        )
        .expect("write config");
        let gateway = Proc {
            child: command(&bins.switchyard, Some("1"))
                .arg("run")
                .arg("--config")
                .arg(&config)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the gateway"),
        };
        wait_port(floor_addr).await;
        wait_port(floor_paced_addr).await;
        wait_port(gateway_addr).await;
        let nginx = match nginx::find() {
            Ok(bin) => nginx::Nginx::start(&bin, direct, paced.addr).await,
            Err(why) => Err(why),
        };
        let nginx = nginx
            .inspect_err(|why| eprintln!("nginx column skipped: {why}"))
            .ok();
        Setup {
            _mock: mock,
            floor,
            floor_paced,
            gateway,
            _dir: dir,
            direct,
            floor_addr,
            gateway_addr,
            admin_addr: admin,
            paced,
            floor_paced_addr,
            nginx,
        }
    }

    /// The proxy process behind a path (none for direct; nginx's worker).
    fn pid_of(&self, name: &str) -> Option<u32> {
        match name {
            "floor" => Some(self.floor.pid()),
            "switchyard" => Some(self.gateway.pid()),
            "nginx" => self.nginx.as_ref().map(|n| n.worker),
            _ => None,
        }
    }

    /// The proxy process behind a path to the paced / instant upstream (none for direct).
    fn paced_pid_of(&self, name: &str) -> Option<u32> {
        match name {
            "floor" => Some(self.floor_paced.pid()),
            _ => self.pid_of(name),
        }
    }

    /// Moves the proxies under test to `cpu` (nginx: its master and its worker).
    fn pin_proxies(&self, cpu: &str) {
        pin(self.floor.pid(), cpu);
        pin(self.gateway.pid(), cpu);
        if let Some(n) = &self.nginx {
            pin(n.master_pid(), cpu);
            pin(n.worker, cpu);
        }
    }

    /// The paths to the mock provider: direct, floor, switchyard, and nginx when it runs.
    fn targets(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut t = vec![
            ("direct", self.direct),
            ("floor", self.floor_addr),
            ("switchyard", self.gateway_addr),
        ];
        t.extend(self.nginx.as_ref().map(|n| ("nginx", n.addr)));
        t
    }

    /// Where the paced streams go, per path, and the virtual key to send.
    fn stream_targets(&self) -> [(&'static str, SocketAddr, &'static str); 3] {
        [
            ("direct", self.paced.addr, "none"),
            ("floor", self.floor_paced_addr, "none"),
            ("switchyard", self.gateway_addr, "vk-paced"),
        ]
    }

    /// The paths to the instant upstream (open loop): the stream paths, and nginx.
    fn instant_targets(&self) -> Vec<(&'static str, SocketAddr, &'static str)> {
        let mut t = self.stream_targets().to_vec();
        t.extend(
            self.nginx
                .as_ref()
                .map(|n| ("nginx", n.instant_addr, "none")),
        );
        t
    }
}

/// An OpenAI-sized chat request (a few hundred bytes of conversation).
fn chat_body(stream: bool) -> String {
    let history: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": format!("Message {i}: please summarise the quarterly numbers for the checkout service and list the three biggest risks.")})
        })
        .collect();
    serde_json::json!({"model": "gpt-4o-mini", "stream": stream, "temperature": 0.2, "messages": history})
        .to_string()
}

/// Lane requests: the non-streaming chat body to `addr`.
fn chat_requests(addr: SocketAddr) -> load::RequestFn {
    let (host, body) = (addr.to_string(), Bytes::from(chat_body(false)));
    Arc::new(move |_| load::post(&host, "/v1/chat/completions", &body, &[]))
}

/// Lane requests to the instant upstream (the paced server without a stream id) on the path
/// through `addr`, with the virtual key `key` selects it by.
fn instant_requests(addr: SocketAddr, key: &str) -> load::RequestFn {
    let (host, body) = (addr.to_string(), Bytes::from(chat_body(false)));
    let authorization = if key == "vk-paced" {
        "Bearer vk-paced"
    } else {
        "Bearer none"
    };
    Arc::new(move |_| load::post_as(authorization, &host, "/v1/chat/completions", &body, &[]))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .expect("client")
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every figure, by name.
pub type Figures = BTreeMap<String, f64>;

/// Per-round samples of each figure; the report takes their median.
type Rounds = BTreeMap<String, Vec<f64>>;

fn push(rounds: &mut Rounds, k: String, v: f64) {
    rounds.entry(k).or_default().push(v);
}

/// The lanes every round reuses (warm connections): one per path for concurrency 1,
/// `load_clients` per path for the closed loop, `load_clients` per path to the instant
/// upstream for the open loop.
struct Lanes {
    single: Vec<Vec<load::Lane>>,
    loaders: Vec<Vec<load::Lane>>,
    instant: Vec<Vec<load::Lane>>,
}

impl Lanes {
    /// Opens every connection on every path.
    async fn warm(setup: &Setup, plan: Plan) -> Lanes {
        let per_target = |count: usize| -> Vec<Vec<load::Lane>> {
            setup
                .targets()
                .iter()
                .map(|(_, addr)| load::Lane::many(count, *addr, &chat_requests(*addr)))
                .collect()
        };
        let mut lanes = Lanes {
            single: per_target(1),
            loaders: per_target(plan.load_clients),
            instant: setup
                .instant_targets()
                .iter()
                .map(|(_, addr, key)| {
                    let requests = instant_requests(*addr, key);
                    load::Lane::many(plan.load_clients, *addr, &requests)
                })
                .collect(),
        };
        for l in lanes.loaders.iter_mut().chain(lanes.instant.iter_mut()) {
            *l = load::closed_loop(std::mem::take(l), 0.2).await.3;
        }
        // The concurrency-1 lanes too: a first request's connect is not in the quick mode's
        // few samples.
        for l in lanes.single.iter_mut().flatten() {
            let _ = l.send(0).await;
        }
        lanes
    }
}

/// Runs the whole plan and returns the figures.
pub async fn run(bins: &Binaries, plan: Plan) -> Figures {
    let setup = Setup::start(bins, plan).await;
    let client = client();
    let mut figures = Figures::new();
    figures.insert(
        "rss_idle_mib.switchyard".into(),
        rss_mib(setup.gateway.pid()),
    );
    figures.insert("rss_idle_mib.floor".into(), rss_mib(setup.floor.pid()));
    figures.insert("nginx_available".into(), setup.nginx.is_some() as u8 as f64);
    if let Some(n) = &setup.nginx {
        figures.insert("rss_idle_mib.nginx".into(), rss_mib(n.worker));
        figures.insert("rss_idle_mib.nginx_master".into(), rss_mib(n.master_pid()));
    }
    let mut lanes = Lanes::warm(&setup, plan).await;
    let mut rounds = Rounds::new();
    for round in 0..plan.rounds {
        concurrency_one(&setup, plan, &mut lanes.single, &mut rounds).await;
        closed_loop(&setup, plan, &mut lanes.loaders, &mut rounds).await;
        for (name, addr, key) in setup.stream_targets() {
            let s = streams(&client, addr, key, &setup.paced, plan).await;
            eprintln!(
                "round {round} {name}: stream ttfc p99 {:.0} µs, transit p99 {:.0} µs, gap p99 {:.0} µs",
                s.ttfc_p99, s.transit_p99, s.gap_p99
            );
            push(
                &mut rounds,
                format!("stream_ttfc_p99_us.{name}"),
                s.ttfc_p99,
            );
            push(
                &mut rounds,
                format!("stream_transit_p99_us.{name}"),
                s.transit_p99,
            );
            push(&mut rounds, format!("stream_gap_p99_us.{name}"), s.gap_p99);
            let lost = s.lost_or_merged as f64;
            push(&mut rounds, format!("stream_lost_or_merged.{name}"), lost);
        }
        open_loop(&setup, plan, round, &mut lanes.instant, &mut rounds).await;
    }
    for (k, v) in rounds {
        figures.insert(k, median(v));
    }
    figures.extend(console_viewers(&setup, plan).await);
    for (name, addr, pid) in [
        ("floor", setup.floor_addr, setup.floor.pid()),
        ("switchyard", setup.gateway_addr, setup.gateway.pid()),
    ] {
        let rss = open_streams(addr, pid, plan).await;
        figures.insert(format!("rss_open_streams_mib.{name}"), rss);
    }
    figures.insert("open_streams".into(), plan.open_streams as f64);
    let soak = soak(&setup, plan).await;
    figures.insert("soak_seconds".into(), plan.soak_seconds);
    figures.insert("soak_rss_start_mib.switchyard".into(), soak.start);
    figures.insert("soak_rss_end_mib.switchyard".into(), soak.end);
    figures.insert("soak_rss_max_mib.switchyard".into(), soak.max);
    figures.insert("soak_requests".into(), soak.requests as f64);
    figures.insert("soak_errors".into(), soak.errors as f64);
    drop(setup);
    figures.extend(coldstart::run(&bins.switchyard, plan).await);
    derived(&mut figures);
    figures
}

/// Latency at concurrency 1, the paths interleaved request by request so that whatever else
/// the machine does falls on all of them alike. Everything runs on CPU 0 for this phase: with
/// one request in flight nothing competes, and a proxy on another CPU would be charged two
/// cross-CPU wake-ups per hop (~40 µs each on this VM) that the direct path does not pay.
async fn concurrency_one(
    setup: &Setup,
    plan: Plan,
    single: &mut [Vec<load::Lane>],
    rounds: &mut Rounds,
) {
    setup.pin_proxies("0");
    let mut hists: Vec<Histogram<u64>> = (0..single.len())
        .map(|_| Histogram::<u64>::new(3).expect("histogram"))
        .collect();
    for n in 0..plan.sequential as u64 {
        for (i, lanes) in single.iter_mut().enumerate() {
            let t = Instant::now();
            if lanes[0].send(n).await {
                let _ = hists[i].record(t.elapsed().as_micros() as u64);
            }
        }
    }
    for (h, (name, _)) in hists.iter().zip(setup.targets()) {
        push(rounds, format!("latency_p50_us.{name}"), micros(h, 0.5));
        push(rounds, format!("latency_p99_us.{name}"), micros(h, 0.99));
    }
    for (k, v) in cache_hits(setup, plan).await {
        push(rounds, k.into(), v);
    }
    setup.pin_proxies("1");
}

/// Closed-loop throughput and CPU per request, path after path.
async fn closed_loop(
    setup: &Setup,
    plan: Plan,
    loaders: &mut [Vec<load::Lane>],
    rounds: &mut Rounds,
) {
    for (lanes, (name, _)) in loaders.iter_mut().zip(setup.targets()) {
        let pid = setup.pid_of(name);
        let cpu_before = pid.map(cpu_seconds);
        let (done, rps, p99, back) =
            load::closed_loop(std::mem::take(lanes), plan.load_seconds).await;
        *lanes = back;
        push(rounds, format!("throughput_rps.{name}"), rps);
        push(rounds, format!("throughput_p99_us.{name}"), p99);
        if let (Some(pid), Some(before)) = (pid, cpu_before) {
            let used = cpu_seconds(pid) - before;
            let per_request = used * 1e6 / done.max(1) as f64;
            push(rounds, format!("cpu_us_per_request.{name}"), per_request);
        }
    }
}

/// Open-loop: the highest rate whose latency-corrected p99 stays within the bound, against the
/// in-process instant upstream (see `paced`), so CPU 0 runs one process; then how busy the
/// proxy's one thread was at that rate (what is left says whether the load driver or the proxy
/// set the limit).
async fn open_loop(
    setup: &Setup,
    plan: Plan,
    round: usize,
    instant: &mut [Vec<load::Lane>],
    rounds: &mut Rounds,
) {
    for (lanes, (name, _, _)) in instant.iter_mut().zip(setup.instant_targets()) {
        let (rate, at, back) = load::max_rate(
            std::mem::take(lanes),
            plan.open_lo,
            plan.open_hi,
            plan.open_steps,
            plan.open_seconds,
            plan.open_p99_limit_us,
        )
        .await;
        *lanes = back;
        push(rounds, format!("open_loop_max_rps.{name}"), rate);
        eprintln!("round {round} {name}: open-loop max {rate:.0} rps at p99 ≤ limit");
        if let Some(p) = at {
            push(rounds, format!("open_loop_p99_us.{name}"), p.p99_us);
        }
        if let (Some(pid), true) = (setup.paced_pid_of(name), rate > 0.0) {
            let (before, t) = (cpu_seconds(pid), Instant::now());
            *lanes = load::probe(std::mem::take(lanes), rate, plan.open_seconds)
                .await
                .1;
            let busy = (cpu_seconds(pid) - before) / t.elapsed().as_secs_f64();
            push(
                rounds,
                format!("open_loop_proxy_cpu_busy_pct.{name}"),
                busy * 100.0,
            );
        }
    }
}

/// What each proxy adds over going direct, and the ratios between proxies.
fn derived(figures: &mut Figures) {
    for metric in [
        "latency_p50_us",
        "latency_p99_us",
        "stream_ttfc_p99_us",
        "stream_transit_p99_us",
        "stream_gap_p99_us",
    ] {
        let direct = figures
            .get(&format!("{metric}.direct"))
            .copied()
            .unwrap_or(f64::NAN);
        for via in ["floor", "switchyard", "nginx"] {
            if let Some(v) = figures.get(&format!("{metric}.{via}")).copied() {
                figures.insert(format!("added_{metric}.{via}"), v - direct);
            }
        }
    }
    let get = |f: &Figures, k: &str| f.get(k).copied().unwrap_or(f64::NAN);
    let mut ratios = vec![
        (
            "added_p50.switchyard_over_floor",
            "added_latency_p50_us.switchyard",
            "added_latency_p50_us.floor",
        ),
        (
            "throughput.switchyard_over_floor",
            "throughput_rps.switchyard",
            "throughput_rps.floor",
        ),
        (
            "throughput.switchyard_over_direct",
            "throughput_rps.switchyard",
            "throughput_rps.direct",
        ),
    ];
    if figures.get("nginx_available") == Some(&1.0) {
        ratios.extend([
            (
                "added_p50.switchyard_over_nginx",
                "added_latency_p50_us.switchyard",
                "added_latency_p50_us.nginx",
            ),
            (
                "added_p99.switchyard_over_nginx",
                "added_latency_p99_us.switchyard",
                "added_latency_p99_us.nginx",
            ),
            (
                "throughput.switchyard_over_nginx",
                "throughput_rps.switchyard",
                "throughput_rps.nginx",
            ),
            (
                "cpu_per_request.switchyard_over_nginx",
                "cpu_us_per_request.switchyard",
                "cpu_us_per_request.nginx",
            ),
            (
                "open_loop.switchyard_over_nginx",
                "open_loop_max_rps.switchyard",
                "open_loop_max_rps.nginx",
            ),
            (
                "rss_idle.switchyard_over_nginx",
                "rss_idle_mib.switchyard",
                "rss_idle_mib.nginx",
            ),
            (
                "added_p50.nginx_over_floor",
                "added_latency_p50_us.nginx",
                "added_latency_p50_us.floor",
            ),
            (
                "throughput.nginx_over_floor",
                "throughput_rps.nginx",
                "throughput_rps.floor",
            ),
        ]);
    }
    for (name, a, b) in ratios {
        let r = get(figures, a) / get(figures, b);
        figures.insert(format!("ratio.{name}"), r);
    }
}

/// Console viewers held open on the admin port's `/events` for the console figures.
const CONSOLE_VIEWERS: usize = 50;

/// Whether the console costs the request path anything: concurrency-1 latency through the
/// gateway with no console open, then with [`CONSOLE_VIEWERS`] event streams open (each taking
/// a frame a second), alternating over the rounds. The gateway stays on its own CPU, where its
/// admin thread competes with its proxy thread.
async fn console_viewers(setup: &Setup, plan: Plan) -> Figures {
    let addr = setup.gateway_addr;
    let mut lane = load::Lane::many(1, addr, &chat_requests(addr));
    let viewer_client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut per_round: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut n = 0u64;
    for _round in 0..plan.rounds {
        for with_viewers in [false, true] {
            let mut viewers = Vec::new();
            if with_viewers {
                let (started, mut ready) = tokio::sync::mpsc::channel::<()>(CONSOLE_VIEWERS);
                for _ in 0..CONSOLE_VIEWERS {
                    let (client, started) = (viewer_client.clone(), started.clone());
                    let url = format!("http://{}/events", setup.admin_addr);
                    viewers.push(tokio::spawn(async move {
                        let Ok(resp) = client.get(url).send().await else {
                            return;
                        };
                        let mut s = resp.bytes_stream();
                        let mut told = false;
                        while let Some(Ok(chunk)) = s.next().await {
                            if !told && chunk.starts_with(b"data:") {
                                let _ = started.send(()).await;
                                told = true;
                            }
                        }
                    }));
                }
                drop(started);
                // Every viewer has its first frame: the sampler runs.
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    for _ in 0..CONSOLE_VIEWERS {
                        ready.recv().await;
                    }
                })
                .await;
            }
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            for _ in 0..plan.sequential {
                let t = Instant::now();
                if lane[0].send(n).await {
                    let _ = h.record(t.elapsed().as_micros() as u64);
                }
                n += 1;
            }
            let name = if with_viewers {
                "viewers_50"
            } else {
                "no_viewers"
            };
            per_round
                .entry(format!("console_latency_p50_us.{name}"))
                .or_default()
                .push(micros(&h, 0.5));
            per_round
                .entry(format!("console_latency_p99_us.{name}"))
                .or_default()
                .push(micros(&h, 0.99));
            if !viewers.is_empty() {
                for v in viewers {
                    v.abort();
                }
                // The gateway has seen them go before the next round opens new ones.
                let metrics = format!("http://{}/metrics", setup.admin_addr);
                for _ in 0..100 {
                    let text = match viewer_client.get(&metrics).send().await {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    if text.lines().any(|l| l == "switchyard_console_viewers 0") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    let mut figures: Figures = per_round.into_iter().map(|(k, v)| (k, median(v))).collect();
    for q in ["p50", "p99"] {
        let get = |k: &str| figures.get(k).copied().unwrap_or(f64::NAN);
        let added = get(&format!("console_latency_{q}_us.viewers_50"))
            - get(&format!("console_latency_{q}_us.no_viewers"));
        figures.insert(format!("console_added_{q}_us.viewers_50"), added);
    }
    figures
}

/// Cache hits at concurrency 1 (still everything on CPU 0): the same chat request to a config
/// with `cache: { mode: simple }` (stored by a first request, then every one a hit),
/// interleaved with the direct path; the added latency is the hit's minus direct's.
async fn cache_hits(setup: &Setup, plan: Plan) -> [(&'static str, f64); 6] {
    let body = Bytes::from(chat_body(false));
    let host = setup.gateway_addr.to_string();
    let cached: load::RequestFn = Arc::new(move |_| {
        load::post(
            &host,
            "/v1/chat/completions",
            &body,
            &[("x-switchyard-virtual-key", "vk-cached")],
        )
    });
    let mut hit = load::Lane::new(setup.gateway_addr, cached);
    let mut direct = load::Lane::new(setup.direct, chat_requests(setup.direct));
    let _ = hit.send(0).await;
    let mut hists = [
        Histogram::<u64>::new(3).expect("histogram"),
        Histogram::<u64>::new(3).expect("histogram"),
    ];
    for n in 0..plan.sequential as u64 {
        for (i, lane) in [&mut direct, &mut hit].into_iter().enumerate() {
            let t = Instant::now();
            if lane.send(n).await {
                let _ = hists[i].record(t.elapsed().as_micros() as u64);
            }
        }
    }
    let (d, h) = (&hists[0], &hists[1]);
    [
        ("cache_hit_latency_p50_us.switchyard", micros(h, 0.5)),
        ("cache_hit_latency_p99_us.switchyard", micros(h, 0.99)),
        ("cache_hit_direct_p50_us", micros(d, 0.5)),
        ("cache_hit_direct_p99_us", micros(d, 0.99)),
        (
            "added_cache_hit_latency_p50_us.switchyard",
            micros(h, 0.5) - micros(d, 0.5),
        ),
        (
            "added_cache_hit_latency_p99_us.switchyard",
            micros(h, 0.99) - micros(d, 0.99),
        ),
    ]
}

struct StreamFigures {
    ttfc_p99: f64,
    /// Chunk sent by the source → received by the client.
    transit_p99: f64,
    /// How much longer the gap between two chunks was at the client than at the source.
    gap_p99: f64,
    lost_or_merged: u64,
}

/// `plan.streams` concurrent paced streams through one path, their starts spread evenly over
/// one chunk interval: they overlap for the whole stream, but their first requests do not all
/// arrive in the same instant (a burst of 16 at once measures how long the 16th waits behind
/// the other 15 on one proxy thread, which is the CPU-per-request figure again, not the time
/// a proxy adds before a stream's first chunk).
async fn streams(
    client: &reqwest::Client,
    addr: SocketAddr,
    key: &str,
    source: &paced::PacedServer,
    plan: Plan,
) -> StreamFigures {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let body = Arc::new(chat_body(true));
    let mut tasks = tokio::task::JoinSet::new();
    let spread = Duration::from_millis(plan.chunk_delay_ms) / plan.streams.max(1) as u32;
    let first = tokio::time::Instant::now();
    for i in 0..plan.streams {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (client, body, key) = (client.clone(), body.clone(), key.to_string());
        let at = first + spread * i as u32;
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            let t = Instant::now();
            let resp = client
                .post(format!("http://{addr}/v1/chat/completions"))
                .bearer_auth(key)
                .header("x-bench-stream", id.to_string())
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            let mut arrivals: Vec<(usize, Instant)> = Vec::new();
            let mut merged = 0u64;
            if let Ok(resp) = resp {
                let mut s = resp.bytes_stream();
                while let Some(Ok(chunk)) = s.next().await {
                    let now = Instant::now();
                    let text = String::from_utf8_lossy(&chunk);
                    let seqs: Vec<usize> = paced::sequence_numbers(&text).collect();
                    merged += seqs.len().saturating_sub(1) as u64;
                    arrivals.extend(seqs.into_iter().map(|q| (q, now)));
                }
            }
            (id, t, arrivals, merged)
        });
    }
    let mut ttfc = Histogram::<u64>::new(3).expect("histogram");
    let mut transit = Histogram::<u64>::new(3).expect("histogram");
    let mut gaps = Histogram::<u64>::new(3).expect("histogram");
    let mut lost_or_merged = 0u64;
    while let Some(Ok((id, started, arrivals, merged))) = tasks.join_next().await {
        lost_or_merged += merged;
        let sent = source
            .sent
            .lock()
            .ok()
            .and_then(|mut log| log.remove(&id))
            .unwrap_or_default();
        let in_order = arrivals.iter().enumerate().all(|(i, (q, _))| *q == i);
        if !in_order || arrivals.len() != plan.stream_chunks || sent.len() != arrivals.len() {
            lost_or_merged += plan.stream_chunks.abs_diff(arrivals.len()).max(1) as u64;
            continue;
        }
        if let Some((_, first)) = arrivals.first() {
            let _ = ttfc.record(first.duration_since(started).as_micros() as u64);
        }
        for (i, (_, at)) in arrivals.iter().enumerate() {
            let _ = transit.record(at.saturating_duration_since(sent[i]).as_micros() as u64);
            if i > 0 {
                let gap_here = at.duration_since(arrivals[i - 1].1).as_micros() as i64;
                let gap_there = sent[i].duration_since(sent[i - 1]).as_micros() as i64;
                let _ = gaps.record((gap_here - gap_there).max(0) as u64);
            }
        }
    }
    StreamFigures {
        ttfc_p99: micros(&ttfc, 0.99),
        transit_p99: micros(&transit, 0.99),
        gap_p99: micros(&gaps, 0.99),
        lost_or_merged,
    }
}

struct Soak {
    start: f64,
    end: f64,
    max: f64,
    requests: u64,
    errors: u64,
}

/// Steady open-loop load on the gateway for `plan.soak_seconds` (one request in ten a short
/// stream), sampling its RSS; `start` is taken after the first sample period (pools warm).
async fn soak(setup: &Setup, plan: Plan) -> Soak {
    let pid = setup.gateway.pid();
    let host = setup.gateway_addr.to_string();
    let (body, stream_body) = (Bytes::from(chat_body(false)), Bytes::from(chat_body(true)));
    let requests: load::RequestFn = Arc::new(move |n| {
        if n % 10 == 9 {
            let fault = [("x-mock-fault", "chunks=8,chunk_delay_ms=5")];
            load::post(&host, "/v1/chat/completions", &stream_body, &fault)
        } else {
            load::post(&host, "/v1/chat/completions", &body, &[])
        }
    });
    // Enough lanes that a 40 ms stream on one never holds up the schedule.
    let lanes = load::Lane::many(plan.load_clients, setup.gateway_addr, &requests);
    let load =
        tokio::spawn(async move { load::probe(lanes, plan.soak_rps, plan.soak_seconds).await.0 });
    let period = Duration::from_secs_f64(plan.soak_sample_seconds);
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed().as_secs_f64() < plan.soak_seconds {
        tokio::time::sleep(period).await;
        samples.push(rss_mib(pid));
    }
    let probe = load.await.ok();
    // After a minute of load: pools and buffers at their working size.
    let warm = (60.0 / plan.soak_sample_seconds) as usize;
    Soak {
        start: samples
            .get(warm.min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN),
        end: rss_mib(pid),
        max: samples.iter().copied().fold(f64::NAN, f64::max),
        requests: probe
            .map(|p| (p.completed_rps * plan.soak_seconds) as u64)
            .unwrap_or(0),
        errors: probe.map(|p| p.errors).unwrap_or(u64::MAX),
    }
}

/// Opens `plan.open_streams` slow streams through a proxy and reads its RSS while they are all
/// open.
async fn open_streams(addr: SocketAddr, pid: u32, plan: Plan) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let body = chat_body(true);
    let mut held = Vec::new();
    for _ in 0..plan.open_streams {
        let req = client
            .post(format!("http://{addr}/v1/chat/completions"))
            .bearer_auth("vk-bench")
            .header("x-mock-fault", "chunks=4,chunk_delay_ms=10000")
            .header("content-type", "application/json")
            .body(body.clone())
            .send();
        held.push(tokio::spawn(async move {
            if let Ok(r) = req.await {
                let mut s = r.bytes_stream();
                // Hold the stream open until dropped.
                while let Some(Ok(_)) = s.next().await {}
            }
        }));
    }
    // Let them all reach the commit point.
    tokio::time::sleep(Duration::from_millis(500 + plan.open_streams as u64)).await;
    let rss = rss_mib(pid);
    for h in held {
        h.abort();
    }
    rss
}

/// Prints the table and writes `target/bench/gateway.json`.
pub fn report(figures: &Figures, out_dir: &Path) -> std::io::Result<PathBuf> {
    table::print(figures);
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join("gateway.json");
    let json = serde_json::to_string_pretty(figures).map_err(std::io::Error::other)?;
    std::fs::write(&path, json)?;
    Ok(path)
}
