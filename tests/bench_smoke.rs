//! The benchmark harness still works: a quick run over the debug binaries produces every figure
//! (their values are not judged here; timing goals live in `benches/`).

#[path = "../benches/support/driver.rs"]
mod driver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_produces_every_figure() {
    let switchyard = std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"));
    let floor = switchyard
        .parent()
        .expect("target dir")
        .join("examples")
        .join("floor");
    assert!(
        floor.exists(),
        "cargo test builds examples: {}",
        floor.display()
    );
    let figures = driver::run(
        &driver::Binaries { switchyard, floor },
        driver::Plan::quick(),
    )
    .await;
    for name in [
        "latency_p50_us.direct",
        "latency_p99_us.switchyard",
        "added_latency_p50_us.floor",
        "added_latency_p50_us.switchyard",
        "throughput_rps.switchyard",
        "cpu_us_per_request.switchyard",
        "stream_ttfc_p99_us.switchyard",
        "stream_gap_p99_us.switchyard",
        "stream_transit_p99_us.switchyard",
        "added_stream_gap_p99_us.switchyard",
        "open_loop_max_rps.switchyard",
        "open_loop_p99_us.switchyard",
        "soak_rss_end_mib.switchyard",
        "soak_rss_max_mib.switchyard",
        "rss_idle_mib.switchyard",
        "rss_open_streams_mib.switchyard",
        "ratio.throughput.switchyard_over_floor",
        "console_latency_p50_us.no_viewers",
        "console_latency_p50_us.viewers_50",
        "console_added_p99_us.viewers_50",
        "cache_hit_latency_p99_us.switchyard",
        "added_cache_hit_latency_p99_us.switchyard",
        "coldstart_first_request_ms.prewarm_0",
        "coldstart_first_request_ms.prewarm_1",
        "coldstart_ready_ms.prewarm_1",
        "tls_streams_upstream_connections_mock.http1",
        "tls_streams_upstream_connections_mock.h2",
        "tls_streams_upstream_connections_gateway.http1",
        "tls_streams_upstream_connections_gateway.h2",
        "tls_latency_p50_us.direct",
        "tls_latency_p99_us.switchyard",
        "added_tls_latency_p50_us.switchyard",
        "added_tls_latency_p99_us.switchyard_h1",
    ] {
        let v = figures.get(name).copied();
        assert!(v.is_some_and(f64::is_finite), "{name} = {v:?}");
    }
    // nginx is a column when it is installed (scripts/test installs it), skipped otherwise.
    if figures["nginx_available"] == 1.0 {
        for name in [
            "latency_p50_us.nginx",
            "latency_p99_us.nginx",
            "added_latency_p50_us.nginx",
            "throughput_rps.nginx",
            "cpu_us_per_request.nginx",
            "open_loop_max_rps.nginx",
            "rss_idle_mib.nginx",
            "ratio.throughput.switchyard_over_nginx",
        ] {
            let v = figures.get(name).copied();
            assert!(v.is_some_and(f64::is_finite), "{name} = {v:?}");
        }
    }
    for protocol in ["http1", "h2"] {
        let failed = figures[&format!("tls_streams_failed.{protocol}")];
        assert_eq!(failed, 0.0, "{protocol} streams failed: {figures:?}");
    }
    assert!(figures["throughput_rps.switchyard"] > 0.0);
    assert!(figures["open_loop_max_rps.switchyard"] > 0.0, "{figures:?}");
    assert_eq!(figures["soak_errors"], 0.0, "{figures:?}");
    assert_eq!(
        figures["stream_lost_or_merged.switchyard"], 0.0,
        "{figures:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = driver::report(&figures, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(json["throughput_rps.direct"].as_f64().unwrap() > 0.0);
}
