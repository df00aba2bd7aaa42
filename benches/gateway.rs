//! `cargo bench --bench gateway` — overhead, throughput, streaming and memory of Switchyard
//! against a bare-pingora floor and the mock provider direct. `SWITCHYARD_BENCH_QUICK=1` for a
//! few-second run; `SWITCHYARD_BENCH_SOAK_SECS` shortens the soak; `SWITCHYARD_BENCH_EXTRA_CONFIG`
//! appends top-level YAML to the gateway's config (experiments, e.g. `access_log: { path: off }`).
//! Builds the release binary and the floor example first.

#[path = "support/driver.rs"]
mod driver;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: do nothing then
    // (the quick-mode smoke test in tests/bench_smoke.rs covers the harness).
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway bench: run it with `cargo bench --bench gateway`");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut build = Command::new(env!("CARGO"));
    // Not the package variables cargo runs this bench with (CARGO_MANIFEST_DIR, CARGO_PKG_*, …):
    // ring's build script reruns when they change, so the inner build would see them set, the
    // next `cargo bench` unset, and each would rebuild ring and all that depends on it (minutes).
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&k.as_ref())
        {
            build.env_remove(&key);
        }
    }
    let status = build
        .args([
            "build",
            "--release",
            "--bin",
            "switchyard",
            "--example",
            "floor",
        ])
        .current_dir(&root)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --release failed");
    let release = root.join("target").join("release");
    let bins = driver::Binaries {
        switchyard: release.join("switchyard"),
        floor: release.join("examples").join("floor"),
    };
    let plan = if std::env::var_os("SWITCHYARD_BENCH_QUICK").is_some() {
        driver::Plan::quick()
    } else {
        driver::Plan::full()
    };
    driver::pin_self_to_cpu0();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let figures = runtime.block_on(driver::run(&bins, plan));
    match driver::report(&figures, &root.join("target").join("bench")) {
        Ok(path) => println!("\nwritten to {}", path.display()),
        Err(e) => eprintln!("cannot write the JSON report: {e}"),
    }
}
