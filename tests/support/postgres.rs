//! Test harness: a real PostgreSQL server (Debian's `postgresql` package; `scripts/test` installs
//! it) in a temporary directory, on an ephemeral loopback port, killed and deleted when dropped.
//! It can be stopped and started again on the same port with its data kept, to test a gateway
//! through a database outage.
//!
//! The server has a database `switchyard` owned by the role `switchyard` (password `secret`, not
//! a superuser), reached over TCP with SCRAM password authentication: [`PostgresServer::url`] is
//! what a gateway's `postgres_url` gets. The superuser `postgres` is reached over the unix socket
//! in the temporary directory ([`PostgresServer::psql_admin`]).
//!
//! PostgreSQL refuses to run as root: under root (CI) `initdb` and `postgres` run as the
//! `postgres` system user the Debian package creates, with the directory handed to it; otherwise
//! as the current user. The binaries come from `/usr/lib/postgresql/<major>/bin/` (the newest
//! major installed), never from `PATH`.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The gateway's role, its password and its database.
pub const USER: &str = "switchyard";
pub const PASSWORD: &str = "secret";
pub const DATABASE: &str = "switchyard";
const SUPERUSER: &str = "postgres";
const INSTALL: &str = "install Debian's postgresql package (scripts/test does)";
/// How long the server may take to accept connections (and to exit when stopped).
const DEADLINE: Duration = Duration::from_secs(10);

pub struct PostgresServer {
    pub port: u16,
    postmaster: Option<Child>,
    bin: PathBuf,
    /// uid and gid to run the server as (the `postgres` user), when the tests run as root.
    owner: Option<(u32, u32)>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// `/usr/lib/postgresql/<major>/bin` of the newest major with a server, `initdb` and `psql`.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            let complete = ["postgres", "initdb", "psql", "pg_isready"]
                .iter()
                .all(|tool| bin.join(tool).is_file());
            complete.then_some((major, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server in /usr/lib/postgresql/<major>/bin (postgres, initdb, psql, \
             pg_isready): {INSTALL}"
        ),
    }
}

/// The `postgres` user's uid and gid when this process is root (PostgreSQL refuses root).
fn owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, SUPERUSER])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "running as root, which PostgreSQL refuses, and there is no `postgres` system user \
             to run it as: {INSTALL}"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    Some((id("-u"), id("-g")))
}

impl PostgresServer {
    /// `initdb` into a new temporary directory, start the server on a free port, create the
    /// `switchyard` role and database; returns once the gateway's URL accepts a query.
    pub fn start() -> PostgresServer {
        let mut server = PostgresServer {
            port: free_port(),
            postmaster: None,
            bin: bin_dir(),
            owner: owner(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        server.initdb();
        // The port was free a moment ago; another process may take it before the server binds.
        let mut attempts = 0;
        while let Err(log) = server.launch() {
            attempts += 1;
            assert!(
                attempts < 5 && log.contains("Address already in use"),
                "postgres exited before accepting connections; its log:\n{log}"
            );
            server.port = free_port();
        }
        server.psql_admin(&format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
        server.psql_admin(&format!("CREATE DATABASE {DATABASE} OWNER {USER}"));
        assert_eq!(server.psql("SELECT 1"), "1");
        server
    }

    /// `postgres://switchyard:secret@127.0.0.1:PORT/switchyard`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// The postmaster's process id while it runs (its children share it as process group).
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.as_ref().map(Child::id)
    }

    /// The temporary directory: the data directory, the unix socket and the server log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A tool of the server's PostgreSQL major, e.g. `psql` or `pg_dump`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The server's log so far (stdout and stderr of every start).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `sql` (one or more `;`-separated statements) with `psql` as the `switchyard` user
    /// through [`url`](Self::url); the rows it prints, unaligned (`a|b`, one row a line, no
    /// header; psql >= 15 prints every statement's rows, older ones the last's). Panics on any
    /// error.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|err| panic!("psql {sql:?} failed: {err}"))
    }

    /// [`psql`](Self::psql), with the error (psql's stderr) returned instead: for a server
    /// that is down, or a statement expected to fail.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.client("psql");
        cmd.arg("-d").arg(self.url());
        run_psql(cmd, sql)
    }

    /// Runs `sql` as the superuser `postgres` on the database `postgres`, over the unix socket.
    pub fn psql_admin(&self, sql: &str) -> String {
        let mut cmd = self.client("psql");
        cmd.arg("-h").arg(self.socket_dir()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
        ]);
        run_psql(cmd, sql).unwrap_or_else(|err| panic!("psql (superuser) {sql:?} failed: {err}"))
    }

    /// Kills the server (SIGQUIT to the postmaster: an immediate shutdown, which ends every
    /// backend) and waits for it. The data directory is kept: [`restart`](Self::restart) starts
    /// it again on the same port, after crash recovery, with every committed row.
    pub fn stop(&mut self) {
        let Some(mut postmaster) = self.postmaster.take() else {
            return;
        };
        let pid = postmaster.id() as libc::pid_t;
        // SAFETY: plain kill(2) of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGQUIT) };
        let deadline = Instant::now() + DEADLINE;
        loop {
            match postmaster.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        // Still running after the deadline: SIGKILL its whole process group (the postmaster
        // and its backends; spawned with process_group(0)) before reaping it, so the group id
        // cannot have been reused.
        // SAFETY: as above; a negative pid names the process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = postmaster.wait();
    }

    /// Stops the server if it runs, and starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.launch() {
            panic!(
                "postgres did not start again on 127.0.0.1:{}; its log:\n{log}",
                self.port
            );
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A server program (`initdb`, `postgres`), run as the `postgres` user under root.
    fn server(&self, program: &str) -> Command {
        let mut cmd = self.client(program);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// A program of the server's major, without the caller's `PG*` environment.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                cmd.env_remove(name);
            }
        }
        cmd.env("PGCONNECT_TIMEOUT", "5")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn initdb(&self) {
        let pwfile = self.dir.path().join("pwfile");
        fs::write(&pwfile, format!("{PASSWORD}\n")).expect("write the superuser password");
        fs::create_dir(self.socket_dir()).expect("create the socket directory");
        if let Some((uid, gid)) = self.owner {
            for path in [self.dir.path(), &pwfile, &self.socket_dir()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
            }
        }
        let out = self
            .server("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}; {INSTALL}", self.tool("initdb").display()));
        assert!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = fs::remove_file(pwfile);
    }

    /// Starts the postmaster on `self.port` and waits until it accepts connections. `Err` with
    /// the log of this start if it exited first; panics if it is not ready by the deadline.
    fn launch(&mut self) -> Result<(), String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log");
        let log_start = log.seek(SeekFrom::End(0)).expect("seek the server log");
        let child = self
            .server("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=50"])
            // Segments in the data directory, not /dev/shm (small in containers).
            .args(["-c", "dynamic_shared_memory_type=mmap"])
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}; {INSTALL}", self.tool("postgres").display()));
        self.postmaster = Some(child);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let exited = self.postmaster.as_mut().and_then(|c| c.try_wait().ok()?);
            if let Some(status) = exited {
                self.postmaster = None;
                return Err(format!("({status})\n{}", self.log_since(log_start)));
            }
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_since(log_start);
                self.stop();
                panic!(
                    "PostgreSQL did not accept connections on 127.0.0.1:{} in {} s; its log:\n{log}",
                    self.port,
                    DEADLINE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_isready` on the TCP port: accepting connections (not starting, not recovering).
    fn is_ready(&self) -> bool {
        self.client("pg_isready")
            .args(["-q", "-t", "1", "-h", "127.0.0.1", "-d", "postgres"])
            .args(["-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let _ = file.seek(SeekFrom::Start(offset));
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

fn run_psql(mut cmd: Command, sql: &str) -> Result<String, String> {
    let out = cmd
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| format!("run psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string())
}

impl Drop for PostgresServer {
    /// Kills the server; the temporary directory (its data) goes with the `TempDir`.
    fn drop(&mut self) {
        self.stop();
    }
}
