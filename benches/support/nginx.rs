//! nginx as a fourth path beside direct, floor and switchyard: a plain reverse proxy (Debian's
//! `nginx-light`, one worker) in front of the same upstreams, started from a config written to
//! a temporary directory, on loopback ports, without root. The bench skips it, with a note,
//! when no `nginx` binary is installed (`SWITCHYARD_BENCH_NGINX=/path/to/nginx` picks another
//! one; `SWITCHYARD_BENCH_NGINX=off` skips it).
//!
//! Two `server` blocks in one process, as the gateway holds both providers: one proxies to the
//! mock provider (latency, closed loop), the other to the driver's in-process instant upstream
//! (open loop). Like the floor: `proxy_pass` to an `upstream` with a keepalive pool,
//! `proxy_http_version 1.1`, `proxy_set_header Connection ""`, `access_log off`; everything else
//! at its defaults but `keepalive_requests` (client and upstream side), raised from 1 000 so
//! that nginx never closes a lane's connection mid-run (the floor and the gateway do not; the
//! lane would count the request that meets the close as an error). `worker_processes 1`, started
//! under `taskset -c 1` (the worker inherits it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{command, loopback_port, Proc};

/// A running nginx: its master (our child) and its one worker.
pub struct Nginx {
    master: Proc,
    pub worker: u32,
    /// Proxies to the mock provider.
    pub addr: SocketAddr,
    /// Proxies to the in-process instant upstream.
    pub instant_addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The nginx binary to run, or why there is none.
pub fn find() -> Result<PathBuf, String> {
    match std::env::var("SWITCHYARD_BENCH_NGINX") {
        Ok(v) if v == "off" => return Err("SWITCHYARD_BENCH_NGINX=off".into()),
        Ok(v) if !v.is_empty() => return Ok(PathBuf::from(v)),
        _ => {}
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
        .ok_or_else(|| "nginx is not installed (apt-get install nginx-light)".into())
}

/// The temp-path directives for the modules this binary has (nginx creates every module's temp
/// directory at start, by default under /var/lib/nginx, which needs root).
fn temp_paths(bin: &Path, dir: &Path) -> String {
    let version = Command::new(bin)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let mut out = String::new();
    for (module, directive) in [
        ("", "client_body_temp_path"),
        ("", "proxy_temp_path"),
        ("fastcgi", "fastcgi_temp_path"),
        ("uwsgi", "uwsgi_temp_path"),
        ("scgi", "scgi_temp_path"),
    ] {
        if module.is_empty() || !version.contains(&format!("--without-http_{module}_module")) {
            out += &format!("    {directive} {}/{directive};\n", dir.display());
        }
    }
    out
}

fn config(dir: &Path, temp: &str, servers: [(SocketAddr, SocketAddr); 2]) -> String {
    let d = dir.display();
    let mut http = String::new();
    for (i, (listen, upstream)) in servers.iter().enumerate() {
        http += &format!(
            "    upstream up{i} {{ server {upstream}; keepalive 256; keepalive_requests 1000000; }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://up{i};
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
"
        );
    }
    format!(
        "daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
{temp}{http}}}
"
    )
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit(')').next()?.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

impl Nginx {
    /// Starts nginx in front of `mock` and `instant`; `Err` (with its error log) if it does not
    /// come up within a few seconds.
    pub async fn start(bin: &Path, mock: SocketAddr, instant: SocketAddr) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (addr, instant_addr) = (loopback_port(), loopback_port());
        let conf = dir.path().join("nginx.conf");
        let text = config(
            dir.path(),
            &temp_paths(bin, dir.path()),
            [(addr, mock), (instant_addr, instant)],
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let error_log = dir.path().join("error.log");
        let child = command(bin, Some("1"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut master = Proc { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = tokio::net::TcpStream::connect(addr).await.is_ok()
                && tokio::net::TcpStream::connect(instant_addr).await.is_ok();
            let worker = children(master.pid()).first().copied();
            if let (true, Some(worker)) = (up, worker) {
                return Ok(Nginx {
                    master,
                    worker,
                    addr,
                    instant_addr,
                    _dir: dir,
                });
            }
            let exited = master.child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                // The master goes with `master` (a `Proc`); a worker it started goes here.
                for worker in children(master.pid()) {
                    // SAFETY: kill(2) on a child of our own child, which is still running.
                    unsafe { libc::kill(worker as libc::pid_t, libc::SIGKILL) };
                }
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                return Err(format!("nginx did not start: {}", log.trim()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn master_pid(&self) -> u32 {
        self.master.pid()
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master (a fast shutdown: it stops its worker, then exits); after two
    /// seconds, SIGKILL to both (the `Proc` drop kills the master; the worker by its pid, if it
    /// is still an nginx process).
    fn drop(&mut self) {
        let master = self.master.pid() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(master, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if self.master.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let worker = self.worker;
        let cmdline = std::fs::read(format!("/proc/{worker}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("nginx") {
            // SAFETY: kill(2) on the worker's pid, checked to still be an nginx process.
            unsafe { libc::kill(worker as libc::pid_t, libc::SIGKILL) };
        }
    }
}
