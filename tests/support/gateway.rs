//! Test harness: runs the real `switchyard` binary on ephemeral loopback ports with a config
//! written to a temporary directory, and kills it when dropped; reads its admin port; starts the
//! mock provider; and the HTTP client the tests share.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_mock::MockHandle;

/// What `switchyard check` said about a config text: success, stdout, stderr.
pub fn check_config(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fault-injecting mock provider on an ephemeral loopback port, on the current runtime.
pub async fn mock() -> MockHandle {
    switchyard_mock::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("start mock")
}

/// An HTTP client whose requests give up after 30 s (so a hung gateway fails a test instead of
/// stalling the suite).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

pub struct Gateway {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    log_path: PathBuf,
}

/// Replaces `$LISTEN` and `$ADMIN` in a config template.
pub fn render(template: &str, addr: SocketAddr, admin: SocketAddr) -> String {
    template
        .replace("$LISTEN", &addr.to_string())
        .replace("$ADMIN", &admin.to_string())
}

impl Gateway {
    /// Starts the gateway on `template` (with `$LISTEN`/`$ADMIN` placeholders; a missing
    /// `listen:` line is added) and waits until `/readyz` answers 200.
    pub async fn start(template: &str) -> Gateway {
        Self::start_with(template, |_| {}, &[]).await
    }

    /// Like [`start`], with files written into the config directory first and extra env vars.
    pub async fn start_with(
        template: &str,
        prepare: impl FnOnce(&Path),
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare(dir.path());
        // A port `free_port` picked may be taken by another test's process before the gateway
        // binds it: then start again on other ports.
        let mut dir = dir;
        for _ in 0..5 {
            let mut gw = Gateway::spawn(template, dir, env);
            if gw.wait_ready().await {
                return gw;
            }
            // Dropping `gw` stops its process; the directory (and what `prepare` put there)
            // goes on to the next try.
            dir = std::mem::replace(&mut gw.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("switchyard could not bind free ports in 5 tries");
    }

    fn spawn(template: &str, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Gateway {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut text = render(template, addr, admin);
        if !text.contains("listen:") {
            text = format!("listen: {addr}\nadmin_listen: {admin}\nthreads: 1\n{text}");
        }
        let config_path = dir.path().join("switchyard.yaml");
        std::fs::write(&config_path, text).expect("write config");
        let log_path = dir.path().join("gateway.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let access = std::fs::File::create(dir.path().join("access.log")).expect("access log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(access)
            .stderr(log)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn switchyard");
        Gateway {
            child: Some(child),
            addr,
            admin,
            dir,
            config_path,
            log_path,
        }
    }

    /// Waits until both ports are this process's own and it is ready; `false` when a port was
    /// taken by someone else (the caller starts again elsewhere).
    async fn wait_ready(&mut self) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("switchyard exited early ({status}):\n{}", self.log());
                }
            }
            let ready = client
                .get(format!("http://{}/readyz", self.admin))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            // Both ports must be this process's own: a port `free_port` picked can be taken by
            // another test's process before the gateway binds it (pingora then retries the bind
            // and the port answers for someone else).
            let pid = self.pid();
            if ready && listens_on(pid, self.addr.port()) && listens_on(pid, self.admin.port()) {
                return true;
            }
            if self.log().contains("is in use") {
                return false;
            }
            if Instant::now() > deadline {
                panic!("switchyard not ready in 20 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// `GET` a path of the admin port (any status).
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        client()
            .get(self.admin_url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the admin port: {e}"))
    }

    /// The body of an admin `GET`, as text.
    pub async fn admin_text(&self, path: &str) -> String {
        self.admin_get(path)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("body of {path}: {e}"))
    }

    /// The body of an admin `GET`, parsed as JSON (`/config`, `/api/console`, …).
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_get(path)
            .await
            .json()
            .await
            .unwrap_or_else(|e| panic!("JSON of {path}: {e}"))
    }

    /// Polls `/readyz` every 20 ms until it answers 503 (draining) or `limit` passes; returns
    /// the time it took. A failed request counts as not yet.
    pub async fn until_not_ready(&self, limit: Duration) -> Option<Duration> {
        eventually(limit, || async {
            reqwest::get(self.admin_url("/readyz"))
                .await
                .map(|r| r.status() == 503)
                .unwrap_or(false)
        })
        .await
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The access-log lines written to stdout so far, parsed.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (bounded) until the access log has at least `n` lines.
    pub async fn access_log_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.access_log();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        self.admin_text("/metrics").await
    }

    /// The value of one sample line, e.g. `switchyard_requests_total{config="chat",...}`,
    /// matched by all of `parts`; 0 when absent.
    pub async fn metric(&self, name: &str, parts: &[&str]) -> f64 {
        metric_value(&self.metrics().await, name, parts)
    }

    /// Waits (up to 5 s) for a metric to reach `expected`: request metrics are recorded just
    /// after the response is written, so a client can see the response first.
    pub async fn expect_metric(&self, name: &str, parts: &[&str], expected: f64) {
        let mut last = 0.0;
        for _ in 0..250 {
            last = self.metric(name, parts).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name}{parts:?} = {last}, expected {expected}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (up to `limit`) and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the config file in place (a plain write, as an editor would).
    pub fn rewrite_config(&self, template: &str) {
        let text = render(template, self.addr, self.admin);
        let text = if text.contains("listen:") {
            text
        } else {
            format!(
                "listen: {}\nadmin_listen: {}\nthreads: 1\n{text}",
                self.addr, self.admin
            )
        };
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &self.config_path).expect("replace config");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn metric_value(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && l[name.len()..].starts_with(['{', ' '])
                && parts.iter().all(|p| l.contains(p))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `check` every 20 ms until it is true or `limit` passes; returns the time it took.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A chat request body.
pub fn chat(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
}

/// Whether process `pid` holds a listening TCP socket on 127.0.0.1:`port` (read from /proc:
/// the socket's inode in /proc/net/tcp, among the process's open files).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let wanted = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, …, st (0A = LISTEN), …, inode
            (cols.len() > 9 && cols[1] == wanted && cols[3] == "0A").then(|| cols[9].to_string())
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|target| {
                let t = target.to_string_lossy();
                inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
            .unwrap_or(false)
    })
}
