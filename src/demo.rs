//! `switchyard demo` (part of the binary, not the library): the gateway on `conf/demo.yaml` in
//! front of two mock providers it starts itself, and a printed walk-through whose numbers are
//! read from the config it serves — the timeout, and after how many slow calls the breaker
//! opens — so the story printed is the one that happens.
//!
//! Ports come from flags and reach the config through the `SWITCHYARD_DEMO_*` variables its
//! `${…:-default}` values read, so the file on disk (hot-reloaded) and the embedded copy both
//! point at the mocks this process started. The access log goes to a file (its path printed),
//! not between the walk-through's lines.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use switchyard::config::{Snapshot, Target, TargetKind};

/// The embedded copy, served when `conf/demo.yaml` is not in the current directory.
const DEMO_CONFIG: &str = include_str!("../conf/demo.yaml");
/// Read from disk (and hot-reloaded) when present, relative to the current directory.
const ON_DISK: &str = "conf/demo.yaml";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the admin port (metrics, console, /config) listens.
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// Ports of the two mock providers on 127.0.0.1, primary then secondary (0: any free one).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "9901,9902",
        value_name = "PRIMARY,SECONDARY"
    )]
    mock_ports: Vec<u16>,
    /// Where the access log goes: a file, `stdout`, `stderr` or `off` [default: a file in the
    /// temporary directory, its path printed].
    #[arg(long, value_name = "PATH")]
    access_log: Option<String>,
    /// The config to serve [default: conf/demo.yaml when the current directory has one, else
    /// the embedded copy].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Starts the mocks on a runtime thread of their own; their addresses once they listen.
fn start_mocks(ports: [u16; 2]) -> Result<[SocketAddr; 2], String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready_tx.send(Err("cannot start a runtime".to_string()));
            return;
        };
        runtime.block_on(async move {
            let mut handles = Vec::new();
            for port in ports {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                match switchyard_mock::start(addr).await {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("mock provider on {addr}: {e}")));
                        return;
                    }
                }
            }
            let _ = ready_tx.send(Ok([handles[0].addr, handles[1].addr]));
            std::future::pending::<()>().await;
            drop(handles);
        });
    });
    ready_rx
        .recv()
        .map_err(|_| "the mock providers did not start".to_string())?
}

/// Loads the config: `--config`, else `conf/demo.yaml` here, else the embedded copy. The path
/// is the file to watch (none for the embedded copy).
fn load(args: &DemoArgs) -> Result<(Snapshot, Option<PathBuf>), String> {
    let path = args.config.clone().or_else(|| {
        let here = PathBuf::from(ON_DISK);
        here.is_file().then_some(here)
    });
    let loaded = match &path {
        Some(p) => switchyard::config::load_file(p),
        None => switchyard::config::load_str(DEMO_CONFIG, None),
    };
    let snapshot = loaded.map_err(|errors| {
        let mut text = String::new();
        for e in &errors.0 {
            text.push_str(&format!("error: {e}\n"));
        }
        text
    })?;
    Ok((snapshot, path))
}

pub fn run(args: DemoArgs) -> ExitCode {
    let ports = match args.mock_ports[..] {
        [a, b] => [a, b],
        _ => {
            eprintln!("error: --mock-ports takes two ports, PRIMARY,SECONDARY");
            return ExitCode::FAILURE;
        }
    };
    let mocks = match start_mocks(ports) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let access_log = args.access_log.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("switchyard-demo-access.log")
            .display()
            .to_string()
    });
    // Read by conf/demo.yaml's `${SWITCHYARD_DEMO_*:-…}` values, now and at every reload. Set
    // while the mocks' thread only awaits its sockets (it reads no environment).
    for (name, value) in [
        ("SWITCHYARD_DEMO_LISTEN", args.listen.to_string()),
        (
            "SWITCHYARD_DEMO_ADMIN_LISTEN",
            args.admin_listen.to_string(),
        ),
        ("SWITCHYARD_DEMO_PRIMARY", mocks[0].to_string()),
        ("SWITCHYARD_DEMO_SECONDARY", mocks[1].to_string()),
        ("SWITCHYARD_DEMO_ACCESS_LOG", access_log.clone()),
        (
            "SWITCHYARD_DEMO_STORE",
            std::env::temp_dir()
                .join("switchyard-demo-requests.db")
                .display()
                .to_string(),
        ),
    ] {
        std::env::set_var(name, value);
    }
    let (snapshot, path) = match load(&args) {
        Ok(loaded) => loaded,
        Err(text) => {
            eprint!("{text}");
            return ExitCode::FAILURE;
        }
    };
    if snapshot.listen != args.listen || snapshot.admin_listen != args.admin_listen {
        eprintln!(
            "warning: the config listens on {} (admin {}), not where the flags ask: it does not read SWITCHYARD_DEMO_LISTEN / SWITCHYARD_DEMO_ADMIN_LISTEN",
            snapshot.listen, snapshot.admin_listen
        );
    }
    let shown = Shown {
        mocks,
        access_log: &access_log,
        source: match &path {
            Some(p) => format!("{} (hot-reloaded: edit and save it)", p.display()),
            None => format!(
                "the embedded copy of conf/demo.yaml (run from the repository's root to serve {ON_DISK} and hot-reload it)"
            ),
        },
    };
    println!("{}", walkthrough(&snapshot, &shown));
    match switchyard::server::run(snapshot, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the walk-through names besides the config.
pub struct Shown<'a> {
    pub mocks: [SocketAddr; 2],
    pub access_log: &'a str,
    pub source: String,
}

/// The gray-failure numbers of the default config's first target, as the config sets them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Story {
    /// The primary's deadline to response headers.
    pub timeout: Duration,
    pub window: Duration,
    pub min_calls: u32,
    pub failure_rate: f64,
    pub open_for: Duration,
}

impl Story {
    /// Read from the default config's first leaf, when the config has that shape and the
    /// breaker is on.
    pub fn of(snapshot: &Snapshot) -> Option<Story> {
        let config = snapshot.configs.get(snapshot.default_config.as_deref()?)?;
        let primary = first_leaf(&config.root)?;
        let s = &primary.settings;
        let b = &s.circuit_breaker;
        let timeout = s.request_timeout.or(s.timeouts.headers)?;
        b.enabled.then_some(Story {
            timeout,
            window: b.window,
            min_calls: b.min_calls,
            failure_rate: b.failure_rate,
            open_for: b.open_for,
        })
    }

    /// How many calls that all fail (time out) open the breaker when its window already holds
    /// `ok` successful ones: at least `min_calls` calls in all, and a failure rate at or above
    /// the threshold (the breaker's own rule, `router::breaker`).
    pub fn failures_to_open(&self, ok: u32) -> u32 {
        (1..=100_000)
            .find(|&n| {
                n + ok >= self.min_calls && f64::from(n) / f64::from(n + ok) >= self.failure_rate
            })
            .unwrap_or(u32::MAX)
    }
}

fn first_leaf(t: &Target) -> Option<&Target> {
    match &t.kind {
        TargetKind::Leaf { .. } => Some(t),
        TargetKind::Group { targets, .. } => targets.first().and_then(first_leaf),
    }
}

/// Seconds, as few digits as needed (`1`, `0.25`).
fn secs(d: Duration) -> String {
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The gray-failure paragraph, with the config's numbers.
fn gray_failure(story: Option<Story>) -> String {
    let Some(s) = story else {
        return "  # a gray failure: the primary now answers after 45 s; what follows depends on the\n  \
                # default config's timeouts and circuit_breaker (see /config):\n"
            .to_string();
    };
    let calls = |n: u32| match n {
        u32::MAX => "no number of".to_string(),
        n => n.to_string(),
    };
    format!(
        "  # a gray failure: the primary now answers after 45 s. Each request waits out the primary's\n  \
         # {t} s timeout, then the secondary answers. The breaker counts the primary's calls over\n  \
         # {w} s and opens once it has seen {min}, {pct}% or more of them failed or slow: after {cold}\n  \
         # slow requests ({warm} while the two requests above are less than {w} s old). After that,\n  \
         # requests skip the primary and take milliseconds:\n",
        t = secs(s.timeout),
        w = secs(s.window),
        min = s.min_calls,
        pct = (s.failure_rate * 100.0).round(),
        cold = calls(s.failures_to_open(0)),
        warm = calls(s.failures_to_open(2)),
    )
}

/// What `switchyard demo` prints: where everything is, then commands to try.
pub fn walkthrough(snapshot: &Snapshot, shown: &Shown<'_>) -> String {
    let gw = snapshot.listen;
    let admin = snapshot.admin_listen;
    let [m0, m1] = shown.mocks;
    let story = Story::of(snapshot);
    let log = match shown.access_log {
        "stdout" | "stderr" => format!("on {}", shown.access_log),
        "off" => "off".to_string(),
        path => format!("{path} (one JSON line per request: tail -f it)"),
    };
    let heal = match story {
        Some(s) => format!(
            "heal the primary: {} s after the circuit opened, the next request probes it",
            secs(s.open_for)
        ),
        None => "heal the primary".to_string(),
    };
    let chat = |stream: &str| {
        format!(
            "curl -s{n} http://{gw}/v1/chat/completions -H 'Authorization: Bearer vk-primary' \\\n       \
             -H 'content-type: application/json' -d '{{\"model\":\"gpt-4o-mini\",{stream}\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}'",
            n = if stream.is_empty() { "" } else { "N" },
        )
    };
    format!(
        r#"Switchyard demo: gateway on http://{gw}, admin on http://{admin}, mock providers on {m0} (primary) and {m1} (secondary).
Config: {source}
Access log: {log}
Console: open http://{admin}/ to watch targets, circuits, fallbacks and the last requests live.

Try:
  {plain}
  {streamed}
{gray}  curl -s -X POST http://{m0}/_mock/fault -d 'headers_delay_ms=45000'
  for i in $(seq 10); do curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}s\n' \
       http://{gw}/v1/chat/completions -H 'Authorization: Bearer vk-primary' \
       -H 'content-type: application/json' -d '{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]}}'; done
  curl -s http://{admin}/metrics | grep -E '^switchyard_(fallbacks_total|circuit_state|requests_total)'
  # …or watch it on the console: the primary's circuit opens, the fallback rate climbs.
  curl -s -X POST http://{m0}/_mock/fault          # {heal}
  curl -s http://{admin}/config
  # Every request is stored: find them by trace or metadata, rate one, summarise by model.
  curl -s 'http://{admin}/v1/analytics/requests?limit=3'
  curl -s http://{gw}/v1/feedback -H 'content-type: application/json' -d '{{"trace_id":"<a trace_id above>","value":1}}'
  curl -s 'http://{admin}/v1/analytics/summary?group_by=model'
  # …or open http://{admin}/#traces and http://{admin}/#analytics.

Ctrl-C stops it."#,
        source = shown.source,
        plain = chat(""),
        streamed = chat("\"stream\":true,"),
        gray = gray_failure(story),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story(min_calls: u32, failure_rate: f64) -> Story {
        Story {
            timeout: Duration::from_secs(1),
            window: Duration::from_secs(30),
            min_calls,
            failure_rate,
            open_for: Duration::from_secs(30),
        }
    }

    #[test]
    fn failures_to_open_follow_the_breaker_rule() {
        let s = story(5, 0.5);
        assert_eq!(s.failures_to_open(0), 5);
        assert_eq!(s.failures_to_open(2), 3);
        assert_eq!(s.failures_to_open(4), 4);
        assert_eq!(s.failures_to_open(10), 10);
        assert_eq!(story(10, 0.5).failures_to_open(0), 10);
        // A 100% threshold is never reached while earlier successes are in the window.
        assert_eq!(story(1, 1.0).failures_to_open(3), u32::MAX);
        assert_eq!(story(1, 1.0).failures_to_open(0), 1);
    }

    #[test]
    fn the_embedded_config_tells_its_own_numbers() {
        let snapshot = switchyard::config::load_str(DEMO_CONFIG, None).unwrap();
        let s = Story::of(&snapshot).unwrap();
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(
            (s.min_calls, s.window, s.open_for),
            (5, Duration::from_secs(30), Duration::from_secs(30))
        );
        let text = walkthrough(
            &snapshot,
            &Shown {
                mocks: [
                    "127.0.0.1:1".parse().unwrap(),
                    "127.0.0.1:2".parse().unwrap(),
                ],
                access_log: "/tmp/a.log",
                source: "x".into(),
            },
        );
        assert!(text.contains("1 s timeout"), "{text}");
        assert!(
            text.contains("after 5\n  # slow requests (3 while"),
            "{text}"
        );
        assert!(text.contains("Access log: /tmp/a.log"), "{text}");
    }
}
