//! `switchyard injector` as a process, over real loopback TLS: certificates from `injector
//! certs`, hot reload of the mounted pair through a kubelet-style `..data` symlink swap (a new
//! connection sees the new certificate; a corrupt replacement keeps the old), the bounds (a
//! client stalled mid-body is cut after the body deadline without blocking other reviews, an
//! oversized body is refused), routes, never a 500, start errors naming the file, and a
//! graceful stop on SIGTERM that lets an in-flight review finish. The reviews themselves (real
//! shapes, the patch against `switchyard inject`) are tests/python/test_injector.py's.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Every wait in these tests is bounded by this (or less).
const LIMIT: Duration = Duration::from_secs(20);

/// A set of files from `switchyard injector certs`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        let out = Command::new(BIN)
            .args(["injector", "certs", "--ip", "127.0.0.1", "--out"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // stdout is the caBundle: base64 of ca.crt.
        let bundle = String::from_utf8(out.stdout).unwrap();
        assert!(
            bundle.trim().len() > 100 && !bundle.contains(' '),
            "{bundle}"
        );
        Certs {
            dir: dir.to_path_buf(),
        }
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }
    fn leaf_der(&self) -> Vec<u8> {
        CertificateDer::pem_slice_iter(&self.read("tls.crt"))
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    }
}

/// The injector process, its certificates mounted as kubelet mounts a Secret volume.
struct Injector {
    child: Option<Child>,
    _tmp: tempfile::TempDir,
    mount: PathBuf,
    generation: u32,
    addr: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
    /// Trusts the CAs of every certificate set made for this test.
    client: Arc<rustls::ClientConfig>,
    sets: Vec<Certs>,
}

impl Injector {
    /// Starts an injector on ephemeral loopback ports with `sets` certificate sets made (the
    /// first one mounted).
    fn start(sets: usize) -> Injector {
        Injector::start_with(sets, &[])
    }

    fn start_with(sets: usize, flags: &[&str]) -> Injector {
        let tmp = tempfile::tempdir().unwrap();
        let sets: Vec<Certs> = (0..sets)
            .map(|i| Certs::make(&tmp.path().join(format!("set{i}"))))
            .collect();
        let mut roots = rustls::RootCertStore::empty();
        for set in &sets {
            for ca in CertificateDer::pem_slice_iter(&set.read("ca.crt")) {
                roots.add(ca.unwrap()).unwrap();
            }
        }
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        // Each connection a full handshake: a resumed session reports the certificate of the
        // session it resumes, not the one served now.
        client.resumption = rustls::client::Resumption::disabled();
        let mount = tmp.path().join("mount");
        std::fs::create_dir_all(&mount).unwrap();
        let log = tmp.path().join("injector.log");
        let mut injector = Injector {
            child: None,
            _tmp: tmp,
            mount,
            generation: 0,
            addr: "127.0.0.1:0".parse().unwrap(),
            metrics: "127.0.0.1:0".parse().unwrap(),
            log,
            client: Arc::new(client),
            sets,
        };
        let (cert, key) = (
            injector.sets[0].read("tls.crt"),
            injector.sets[0].read("tls.key"),
        );
        injector.mount_pair(&cert, &key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), injector.mount.join(name))
                .unwrap();
        }
        injector.spawn(flags);
        injector
    }

    fn spawn(&mut self, flags: &[&str]) {
        let mut child = Command::new(BIN)
            .args([
                "injector",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert")
            .arg(self.mount.join("tls.crt"))
            .arg("--tls-key")
            .arg(self.mount.join("tls.key"))
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&self.log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = self.log.clone();
        let addr = |prefix: &str| -> SocketAddr {
            let line = rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("no {prefix} line; log:\n{log}")
            });
            let addr = line
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{line}"));
            addr.parse().unwrap()
        };
        self.addr = addr("injector listening on https://");
        self.metrics = addr("injector metrics on http://");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What kubelet does on a Secret update: a new timestamped directory, then `..data`
    /// atomically re-pointed at it (`tls.crt` and `tls.key` are links through `..data`).
    fn mount_pair(&mut self, cert: &[u8], key: &[u8]) {
        self.generation += 1;
        let name = format!(
            "..2026_12_05_10_00_{:02}.{}",
            self.generation, self.generation
        );
        let dir = self.mount.join(&name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
        let tmp_link = self.mount.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp_link).unwrap();
        std::fs::rename(&tmp_link, self.mount.join("..data")).unwrap();
    }

    async fn connect(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.client));
        let name = ServerName::IpAddress(self.addr.ip().into());
        tokio::time::timeout(LIMIT, connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap()
    }

    /// The leaf certificate a new connection is served.
    async fn served_cert(&self) -> Vec<u8> {
        let tls = self.connect().await;
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    /// One request over a new TLS connection: (status, body).
    async fn request(&self, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut tls = self.connect().await;
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        read_response(&mut tls).await
    }

    async fn post(&self, body: &[u8]) -> (u16, Vec<u8>) {
        self.request(&post_head(body.len()), body).await
    }

    async fn metrics_text(&self) -> String {
        let mut tcp = TcpStream::connect(self.metrics).await.unwrap();
        let head = "GET /metrics HTTP/1.1\r\nHost: injector\r\nConnection: close\r\n\r\n";
        tcp.write_all(head.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut tcp).await;
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.as_mut()?.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn post_head(len: usize) -> String {
    format!(
        "POST /inject HTTP/1.1\r\nHost: switchyard-injector.switchyard-system.svc:443\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Reads a whole `Connection: close` response: (status, body).
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (u16, Vec<u8>) {
    let mut raw = Vec::new();
    // A TLS peer that closes without close_notify is an error here: what was read still counts.
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time");
    parse_response(&raw)
        .unwrap_or_else(|| panic!("no response in {:?}", String::from_utf8_lossy(&raw)))
}

fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.as_bytes().to_vec()))
}

fn review_json(uid: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": "web-7d9f-", "namespace": "shop"},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
            "oldObject": null, "dryRun": false,
        }
    }))
    .unwrap()
}

/// The response AdmissionReview: allowed, with `uid`.
fn assert_allowed(body: &[u8], uid: &str) -> serde_json::Value {
    let review: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["allowed"], true, "{review}");
    assert_eq!(review["response"]["uid"], uid, "{review}");
    review
}

fn metric(text: &str, result: &str) -> f64 {
    let prefix = format!("switchyard_injector_requests_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} missing:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_and_a_corrupt_one_is_not() {
    let mut injector = Injector::start(2);
    let first = injector.sets[0].leaf_der();
    let second = injector.sets[1].leaf_der();
    assert_eq!(injector.served_cert().await, first);
    // An open connection is not disturbed by the rotation.
    let mut open = injector.connect().await;

    let (cert, key) = (
        injector.sets[1].read("tls.crt"),
        injector.sets[1].read("tls.key"),
    );
    injector.mount_pair(&cert, &key);
    let started = Instant::now();
    while injector.served_cert().await != second {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = review_json("after-rotation");
    open.write_all(post_head(body.len()).as_bytes())
        .await
        .unwrap();
    open.write_all(&body).await.unwrap();
    let (status, response) = read_response(&mut open).await;
    assert_eq!(status, 200);
    assert_allowed(&response, "after-rotation");

    // A corrupt replacement (a truncated certificate) and a mismatched one (the old key): the
    // last good pair keeps being served, with a warning, past a poll period.
    let first_key = injector.sets[0].read("tls.key");
    injector.mount_pair(&cert[..cert.len() / 2], &key);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served = injector.served_cert().await;
    assert!(
        served == second,
        "first: {}; log:\n{}",
        served == first,
        injector.log_text()
    );
    injector.mount_pair(&cert, &first_key);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(injector.served_cert().await, second);
    let log = injector.log_text();
    assert!(log.contains("not usable"), "{log}");
    assert!(log.contains("tls.crt"), "{log}");
    assert!(
        injector.wait_exit(Duration::ZERO).is_none(),
        "the injector died: {log}"
    );
}

#[tokio::test]
async fn a_stalled_body_is_cut_after_the_deadline_and_does_not_block_other_reviews() {
    let injector = Injector::start(1);
    let body = review_json("stalled");
    let mut stalled = injector.connect().await;
    stalled
        .write_all(post_head(body.len()).as_bytes())
        .await
        .unwrap();
    stalled.write_all(&body[..body.len() / 2]).await.unwrap();
    stalled.flush().await.unwrap();
    let stalled_at = Instant::now();

    // Other reviews are answered at once meanwhile.
    for i in 0..5 {
        let uid = format!("meanwhile-{i}");
        let started = Instant::now();
        let (status, response) = injector.post(&review_json(&uid)).await;
        assert_eq!(status, 200);
        assert_allowed(&response, &uid);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // The stalled one is answered (408) or closed once the body deadline passes, not before.
    let (status, _) = read_response(&mut stalled).await;
    let waited = stalled_at.elapsed();
    assert_eq!(status, 408);
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    let metrics = injector.metrics_text().await;
    assert_eq!(metric(&metrics, "malformed"), 1.0, "{metrics}");
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let injector = Injector::start(1);
    // A TCP connection that never starts its TLS handshake.
    let mut silent = TcpStream::connect(injector.addr).await.unwrap();
    // A keep-alive connection left idle after one request.
    let mut idle = injector.connect().await;
    let head = "GET /healthz HTTP/1.1\r\nHost: injector\r\n\r\n";
    idle.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let closed = |n: std::io::Result<usize>| !matches!(n, Ok(n) if n > 0);
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    let (silent_end, idle_end) = tokio::join!(
        tokio::time::timeout(LIMIT, silent.read(&mut a)),
        tokio::time::timeout(LIMIT, idle.read(&mut b)),
    );
    assert!(closed(
        silent_end.expect("the silent connection was closed")
    ));
    assert!(closed(idle_end.expect("the idle connection was closed")));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(14),
        "{waited:?}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_being_read() {
    let injector = Injector::start(1);
    // Declared too large: refused from the head, no body sent (unread bytes would make the
    // close a reset that can swallow the response).
    let (status, body) = injector.request(&post_head(9 * 1024 * 1024), b"").await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // Chunked, growing past the cap: refused once the byte past 8 MiB arrives.
    let mut tls = injector.connect().await;
    let head = "POST /inject HTTP/1.1\r\nHost: injector\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..8 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        tls.write_all(&framed).await.unwrap();
    }
    tls.write_all(b"1\r\n \r\n").await.unwrap();
    tls.flush().await.unwrap();
    let (status, _) = read_response(&mut tls).await;
    assert_eq!(status, 413);
    let metrics = injector.metrics_text().await;
    assert_eq!(metric(&metrics, "malformed"), 2.0, "{metrics}");
}

#[tokio::test]
async fn routes_and_garbage_never_get_a_500() {
    let injector = Injector::start(1);
    let get = |path: &str, method: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: injector\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    assert_eq!(
        injector.request(&get("/healthz", "GET"), b"").await,
        (200, b"ok\n".to_vec())
    );
    assert_eq!(injector.request(&get("/inject", "GET"), b"").await.0, 405);
    assert_eq!(injector.request(&get("/healthz", "POST"), b"").await.0, 405);
    assert_eq!(injector.request(&get("/", "GET"), b"").await.0, 404);
    assert_eq!(injector.request(&get("/metrics", "GET"), b"").await.0, 404);
    let garbage: [&[u8]; 7] = [
        b"",
        b"null",
        b"\xff\xfe\x00",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":[]}",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"g\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{\"spec\":7,\"metadata\":[]}}}",
        b"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"h\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"ownerReferences\":\"x\"},\"spec\":{\"containers\":{}}}}}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    for body in garbage {
        let (status, response) = injector.post(body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        let review: serde_json::Value = serde_json::from_slice(&response).unwrap();
        assert_eq!(review["response"]["allowed"], true);
    }
    let mut metrics = TcpStream::connect(injector.metrics).await.unwrap();
    metrics
        .write_all(get("/healthz", "GET").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut metrics).await, (200, b"ok\n".to_vec()));
    assert!(!injector.log_text().contains("panicked"));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_review_finish_then_exits() {
    let mut injector = Injector::start(1);
    let body = review_json("in-flight");
    let mut tls = injector.connect().await;
    tls.write_all(post_head(body.len()).as_bytes())
        .await
        .unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    injector.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer accepted...
    assert!(
        TcpStream::connect(injector.addr).await.is_err()
            || injector.log_text().contains("stopping")
    );
    // ...and the one in flight is answered.
    tls.write_all(&body[10..]).await.unwrap();
    let (status, response) = read_response(&mut tls).await;
    assert_eq!(status, 200);
    assert_allowed(&response, "in-flight");
    let status = injector
        .wait_exit(Duration::from_secs(8))
        .expect("exited after SIGTERM");
    assert!(status.success(), "{status:?}: {}", injector.log_text());
}

#[tokio::test]
async fn with_a_shutdown_delay_it_keeps_serving_after_sigterm_with_healthz_failing() {
    let mut injector = Injector::start_with(1, &["--shutdown-delay", "2"]);
    let health = "GET /healthz HTTP/1.1\r\nHost: injector\r\nConnection: close\r\n\r\n";
    assert_eq!(injector.request(health, b"").await.0, 200);
    let stopped_at = Instant::now();
    injector.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still answering reviews on new connections, but no longer healthy.
    assert_eq!(injector.request(health, b"").await.0, 503);
    let (status, response) = injector.post(&review_json("during-delay")).await;
    assert_eq!(status, 200);
    assert_allowed(&response, "during-delay");
    let status = injector
        .wait_exit(Duration::from_secs(8))
        .expect("exited after the delay");
    assert!(status.success());
    let took = stopped_at.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

#[test]
fn a_missing_or_invalid_pair_at_start_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = Certs::make(&tmp.path().join("c"));
    let run = |cert: &Path, key: &Path| {
        let out = Command::new(BIN)
            .args([
                "injector",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let missing = tmp.path().join("nowhere.crt");
    let key = certs.dir.join("tls.key");
    assert!(run(&missing, &key).contains("nowhere.crt"));
    let not_a_key = certs.dir.join("ca.crt");
    let e = run(&certs.dir.join("tls.crt"), &not_a_key);
    assert!(e.contains("ca.crt") && e.contains("private key"), "{e}");
    // A key that is not the certificate's: another set's.
    let other = Certs::make(&tmp.path().join("d"));
    let e = run(&certs.dir.join("tls.crt"), &other.dir.join("tls.key"));
    assert!(e.contains("is not a usable private key"), "{e}");
    // Without --force, `injector certs` never overwrites.
    let out = Command::new(BIN)
        .args(["injector", "certs", "--out"])
        .arg(&certs.dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
}
