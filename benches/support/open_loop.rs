//! Open-loop load with latency correction: requests are due at a fixed rate whatever the
//! server does (a pacing thread sends each one's due instant), and each latency is measured
//! from when the request was *due*, not from when it was sent — so a stalled server is charged
//! for the requests it delayed (no coordinated omission, as wrk2 and `oha --latency-correction`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One probe's result.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub offered_rps: f64,
    pub completed_rps: f64,
    pub p99_us: f64,
    pub errors: u64,
}

/// Requests the probe gives up on: beyond this many outstanding the server is overloaded.
const MAX_OUTSTANDING: u64 = 4096;

/// Offers `rate` requests per second for `seconds` and reports the corrected p99.
pub async fn probe<S, F>(sender: &S, rate: f64, seconds: f64) -> Probe
where
    S: Fn(u64) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = bool> + Send + 'static,
{
    let total = (rate * seconds).ceil() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let start = Instant::now() + Duration::from_millis(5);
    std::thread::spawn(move || {
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send((i, due)).is_err() {
                return;
            }
        }
    });
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
    let outstanding = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut overloaded = false;
    while let Some((n, due)) = rx.recv().await {
        if outstanding.load(Ordering::Relaxed) >= MAX_OUTSTANDING {
            overloaded = true;
            break;
        }
        outstanding.fetch_add(1, Ordering::Relaxed);
        let (sender, hist, outstanding, errors) = (
            sender.clone(),
            hist.clone(),
            outstanding.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            let ok = sender(n).await;
            let latency = due.elapsed().as_micros() as u64;
            outstanding.fetch_sub(1, Ordering::Relaxed);
            if ok {
                if let Ok(mut h) = hist.lock() {
                    let _ = h.record(latency);
                }
            } else {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drop(rx);
    // Let what was sent finish (bounded), so the next probe starts on a quiet server.
    let drain = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drain.is_err() {
        tasks.abort_all();
        overloaded = true;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| Histogram::<u64>::new(3).expect("histogram"));
    let errors = errors.load(Ordering::Relaxed);
    Probe {
        offered_rps: rate,
        completed_rps: h.len() as f64 / elapsed,
        p99_us: if overloaded {
            f64::INFINITY
        } else {
            h.value_at_quantile(0.99) as f64
        },
        errors,
    }
}

/// The highest rate (within `lo..hi`, in `steps` bisections) at which the corrected p99 stays
/// within `p99_limit_us` with no errors. Returns the rate and the probe at that rate.
pub async fn max_rate<S, F>(
    sender: &S,
    mut lo: f64,
    mut hi: f64,
    steps: usize,
    seconds: f64,
    p99_limit_us: f64,
) -> (f64, Option<Probe>)
where
    S: Fn(u64) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = bool> + Send + 'static,
{
    let mut best = None;
    let ok = |p: &Probe| p.p99_us <= p99_limit_us && p.errors == 0;
    // The floor of the range must pass, or the answer is below it.
    let first = probe(sender, lo, seconds).await;
    if !ok(&first) {
        return (0.0, Some(first));
    }
    best = best.or(Some(first));
    for _ in 0..steps {
        let mid = (lo + hi) / 2.0;
        let p = probe(sender, mid, seconds).await;
        if ok(&p) {
            lo = mid;
            best = Some(p);
        } else {
            hi = mid;
        }
    }
    (lo, best)
}
