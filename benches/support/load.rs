//! The load generator: lanes, each one HTTP/1.1 connection of its own (raw hyper, no pool, no
//! task per request), driven open-loop at a fixed rate or closed-loop as fast as they go.
//!
//! Open-loop follows wrk2's model: lane `i` of `N` owns requests `i, i + N, i + 2N, …`, each
//! due at `start + n / rate` whatever the server does. A latency is measured from when the
//! request was *due* if the server made it late (the lane's previous response came back after
//! that instant: no coordinated omission, as wrk2 and `oha --latency-correction`), and from
//! when it was actually sent otherwise (a timer waking late is the driver's slack, not the
//! server's). Nothing is shared between lanes on the request path but the due-time arithmetic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Builds request number `n`.
pub type RequestFn = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// One connection and the requests it sends, in order; reconnects after an error.
pub struct Lane {
    addr: SocketAddr,
    conn: Option<SendRequest<Full<Bytes>>>,
    requests: RequestFn,
}

impl Lane {
    pub fn new(addr: SocketAddr, requests: RequestFn) -> Lane {
        Lane {
            addr,
            conn: None,
            requests,
        }
    }

    /// `count` lanes to one address.
    pub fn many(count: usize, addr: SocketAddr, requests: &RequestFn) -> Vec<Lane> {
        (0..count)
            .map(|_| Lane::new(addr, requests.clone()))
            .collect()
    }

    async fn connect(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let _ = tcp.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .ok()?;
            tokio::spawn(conn);
            self.conn = Some(sender);
        }
        self.conn.as_mut()
    }

    /// Sends request `n` and reads the whole answer; true on a 2xx.
    pub async fn send(&mut self, n: u64) -> bool {
        let request = (self.requests)(n);
        let Some(conn) = self.connect().await else {
            return false;
        };
        if conn.ready().await.is_err() {
            self.conn = None;
            return false;
        }
        match conn.send_request(request).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                ok & resp.into_body().collect().await.is_ok()
            }
            Err(_) => {
                self.conn = None;
                false
            }
        }
    }
}

/// A POST of `body` to `path` on `host` with the bench's virtual key and `extra` headers.
pub fn post(
    host: &str,
    path: &str,
    body: &Bytes,
    extra: &[(&'static str, &'static str)],
) -> Request<Full<Bytes>> {
    post_as("Bearer vk-bench", host, path, body, extra)
}

/// [`post`] with another `authorization` value.
pub fn post_as(
    authorization: &'static str,
    host: &str,
    path: &str,
    body: &Bytes,
    extra: &[(&'static str, &'static str)],
) -> Request<Full<Bytes>> {
    let mut b = Request::post(path)
        .header("host", host)
        .header("authorization", authorization)
        .header("content-type", "application/json");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.clone()))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

/// One probe's result.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub offered_rps: f64,
    pub completed_rps: f64,
    pub p99_us: f64,
    pub errors: u64,
}

/// A lane this far behind its schedule means the server cannot keep up: stop offering.
const GIVE_UP_BEHIND: Duration = Duration::from_secs(1);

/// Offers `rate` requests per second for `seconds` over `lanes` and reports the corrected p99.
/// The lanes come back for the next probe (their connections stay open).
pub async fn probe(lanes: Vec<Lane>, rate: f64, seconds: f64) -> (Probe, Vec<Lane>) {
    let n_lanes = lanes.len().max(1) as u64;
    let total = (rate * seconds).ceil() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(5);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut lane) in lanes.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut errors, mut overloaded) = (0u64, false);
            let mut previous_done = start;
            let mut n = i as u64;
            while n < total {
                let due = start + interval.mul_f64(n as f64);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > GIVE_UP_BEHIND {
                    overloaded = true;
                    break;
                }
                let sent = Instant::now();
                let origin = if previous_done > due { due } else { sent };
                let ok = lane.send(n).await;
                previous_done = Instant::now();
                if ok {
                    let _ = hist.record(previous_done.duration_since(origin).as_micros() as u64);
                } else {
                    errors += 1;
                }
                n += n_lanes;
            }
            (lane, hist, errors, overloaded)
        });
    }
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    let (mut errors, mut overloaded, mut lanes) = (0, false, Vec::new());
    while let Some(Ok((lane, hist, e, o))) = tasks.join_next().await {
        let _ = all.add(&hist);
        errors += e;
        overloaded |= o;
        lanes.push(lane);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let probe = Probe {
        offered_rps: rate,
        completed_rps: all.len() as f64 / elapsed,
        p99_us: if overloaded {
            f64::INFINITY
        } else {
            all.value_at_quantile(0.99) as f64
        },
        errors,
    };
    (probe, lanes)
}

/// The highest rate (within `lo..hi`, in `steps` bisections) at which the corrected p99 stays
/// within `p99_limit_us` with no errors. Returns the rate, the probe at that rate and the lanes.
pub async fn max_rate(
    mut lanes: Vec<Lane>,
    mut lo: f64,
    mut hi: f64,
    steps: usize,
    seconds: f64,
    p99_limit_us: f64,
) -> (f64, Option<Probe>, Vec<Lane>) {
    let ok = |p: &Probe| p.p99_us <= p99_limit_us && p.errors == 0;
    // The floor of the range must pass, or the answer is below it.
    let (first, back) = probe(lanes, lo, seconds).await;
    lanes = back;
    if !ok(&first) {
        return (0.0, Some(first), lanes);
    }
    let mut best = Some(first);
    for _ in 0..steps {
        let mid = (lo + hi) / 2.0;
        let (p, back) = probe(lanes, mid, seconds).await;
        lanes = back;
        if ok(&p) {
            lo = mid;
            best = Some(p);
        } else {
            hi = mid;
        }
    }
    (lo, best, lanes)
}

/// Every lane sends back to back for `seconds`: completed requests, requests/s and p99 (µs).
pub async fn closed_loop(lanes: Vec<Lane>, seconds: f64) -> (u64, f64, f64, Vec<Lane>) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut lane in lanes {
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut n = 0;
            while Instant::now() < until {
                let t = Instant::now();
                if lane.send(n).await {
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
                n += 1;
            }
            (lane, hist)
        });
    }
    let (mut all, mut lanes) = (Histogram::<u64>::new(3).expect("histogram"), Vec::new());
    while let Some(Ok((lane, hist))) = tasks.join_next().await {
        let _ = all.add(&hist);
        lanes.push(lane);
    }
    let done = all.len();
    let rps = done as f64 / started.elapsed().as_secs_f64();
    (done, rps, all.value_at_quantile(0.99) as f64, lanes)
}
