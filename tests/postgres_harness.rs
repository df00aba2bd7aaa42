//! The PostgreSQL test harness (`tests/support/postgres.rs`) on a real server: what the request
//! store's tests rely on — password login as a non-superuser owning its database, rows kept
//! through a stop and a restart on the same port, independent servers side by side, and no
//! process or directory left behind.

#[path = "support/postgres.rs"]
mod postgres_server;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use postgres_server::PostgresServer;

/// Every process (zombies included) whose process group is `pgid`: a stopped server's postmaster
/// and its backends all had the postmaster's pid as their group.
fn group_members(pgid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) {
            found.push(format!("{head}) {}", fields[0]));
        }
    }
    found
}

/// The real uid of a process.
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn rows_survive_a_stop_and_a_restart_on_the_same_port() {
    let mut pg = PostgresServer::start();
    let port = pg.port;
    assert_eq!(
        pg.url(),
        format!("postgres://switchyard:secret@127.0.0.1:{port}/switchyard")
    );
    // The gateway's role: logs in with its password, owns its database, is no superuser.
    assert_eq!(
        pg.psql("SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user"),
        "switchyard|switchyard|f"
    );
    // PostgreSQL refuses root: under root the server runs as the postgres user.
    let pid = pg.pid().expect("running");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_ne!(uid_of(pid), 0, "the postmaster runs as root");
    }
    // Password authentication on 127.0.0.1, not trust: a wrong password is refused.
    let wrong = Command::new(pg.tool("psql"))
        .args(["-X", "-c", "SELECT 1", "-d"])
        .arg(pg.url().replace(":secret@", ":wrong@"))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    pg.psql("CREATE TABLE requests (id bigint PRIMARY KEY, trace_id text NOT NULL)");
    pg.psql("INSERT INTO requests VALUES (1, 'trace-a'), (2, 'trace-b')");
    assert_eq!(pg.psql("SELECT count(*) FROM requests"), "2");

    // A backend besides the postmaster's own children, to be killed with it.
    let mut idle = Guard(
        Command::new(pg.tool("psql"))
            .args(["-X", "-c", "SELECT pg_sleep(60)", "-d", &pg.url()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    while pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")
        != "1"
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    pg.stop();
    assert_eq!(pg.pid(), None);
    assert_eq!(group_members(pid), Vec::<String>::new(), "left behind");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening"
    );
    let err = pg.try_psql("SELECT 1").unwrap_err();
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!idle.0.wait().unwrap().success(), "its backend was killed");
    assert!(
        pg.dir().join("data/PG_VERSION").is_file(),
        "stop keeps the data"
    );

    pg.restart();
    assert_eq!(pg.port, port);
    assert_eq!(
        pg.psql("SELECT id, trace_id FROM requests ORDER BY id"),
        "1|trace-a\n2|trace-b"
    );
    pg.psql("INSERT INTO requests VALUES (3, 'trace-c')");
    // restart() on a running server stops it first.
    let pid = pg.pid().unwrap();
    pg.restart();
    assert_eq!(group_members(pid), Vec::<String>::new(), "left behind");
    assert_eq!(pg.psql("SELECT count(*) FROM requests"), "3");
}

/// Kills a child process on drop (a failed assertion must not leave it running).
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_servers_run_side_by_side_and_drop_leaves_nothing() {
    let a = PostgresServer::start();
    let b = PostgresServer::start();
    assert_ne!(a.port, b.port);
    assert_ne!(a.dir(), b.dir());
    a.psql("CREATE TABLE only_in_a (x int)");
    assert!(b.try_psql("SELECT * FROM only_in_a").is_err());
    assert_eq!(
        b.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"),
        "0"
    );
    // The superuser, over the unix socket in the temporary directory.
    assert_eq!(a.psql_admin("SELECT current_user"), "postgres");

    let (pid, dir, port) = (a.pid().unwrap(), a.dir().to_path_buf(), a.port);
    drop(a);
    assert_eq!(group_members(pid), Vec::<String>::new(), "left behind");
    assert!(!Path::new(&dir).exists(), "{} kept", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening"
    );
    assert_eq!(b.psql("SELECT 1"), "1");
}
