//! Forward-proxy mode (`HTTPS_PROXY` / `HTTP_PROXY`) end to end: the real binary, real CONNECTs
//! and TLS over loopback, the mock provider behind the intercepted host names, and local servers
//! of the test's own for tunnels.

#[path = "support/gateway.rs"]
mod harness;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use harness::{chat, mock, Gateway};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use switchyard_mock::MockHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROVIDER_KEY: &str = "sk-forward-provider-key-42";
const APP_KEY: &str = "sk-app-placeholder-not-a-real-key";

/// The CA in the config directory, as `switchyard ca init` writes it.
fn write_ca(dir: &Path) {
    switchyard::server::forward::ca::init_dir(dir, false, 30).expect("ca init");
}

fn config(mock: &MockHandle, allow: &str) -> String {
    format!(
        r#"
providers:
  openai:
    kind: openai
    base_url: http://{addr}/v1
    api_key: {PROVIDER_KEY}
virtual_keys:
  vk-app:
    provider: openai
forward:
  ca_cert: ca.pem
  ca_key: ca.key
  allow_hosts: [{allow}]
"#,
        addr = mock.addr
    )
}

async fn start(mock: &MockHandle, allow: &str) -> Gateway {
    Gateway::start_with(&config(mock, allow), write_ca, &[]).await
}

fn ca_pem(gw: &Gateway) -> Vec<u8> {
    std::fs::read(gw.dir.path().join("ca.pem")).unwrap()
}

/// A client that reaches everything through the gateway as its proxy and trusts only `roots`.
fn proxied_client(gw: &Gateway, roots: &[&[u8]]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(gw.url("")).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30));
    for pem in roots {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    b.build().unwrap()
}

/// Sends raw bytes and reads until the gateway closes the connection (bounded).
async fn raw_exchange(gw: &Gateway, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the gateway did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens a CONNECT tunnel and returns the stream after the `200`.
async fn connect(gw: &Gateway, target: &str) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).await.unwrap(),
            1,
            "closed during the head"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    s
}

fn tls_client(roots: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        for c in CertificateDer::pem_slice_iter(pem) {
            store.add(c.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn the_openai_host_is_intercepted_and_served_by_the_gateway() {
    let mock = mock().await;
    let gw = start(&mock, "").await;
    let ca = ca_pem(&gw);
    let client = proxied_client(&gw, &[&ca]);
    let url = "https://api.openai.com/v1/chat/completions";

    // Non-streaming, with the app's own (non-virtual) key: the host's provider answers.
    let resp = client
        .post(url)
        .bearer_auth(APP_KEY)
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN h2");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    let auth = format!("Bearer {PROVIDER_KEY}");
    assert_eq!(seen[0].header("authorization"), Some(auth.as_str()));
    assert!(!format!("{seen:?}").contains(APP_KEY));

    // Streaming.
    let resp = client
        .post(url)
        .bearer_auth(APP_KEY)
        .json(&chat("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("tok0"), "{text}");

    // A virtual key still selects its own route.
    let resp = client
        .post(url)
        .bearer_auth("vk-app")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // HTTP/1.1 inside the tunnel works as well.
    let h1 = reqwest::Client::builder()
        .proxy(reqwest::Proxy::https(gw.url("")).unwrap())
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let resp = h1
        .post(url)
        .bearer_auth(APP_KEY)
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(mock.requests().len(), 4);

    // Metrics and access log as in base-URL mode, plus the connection counter.
    let intercepts = gw
        .metric(
            "switchyard_forward_connections_total",
            &["mode=\"intercept\""],
        )
        .await;
    assert!(intercepts >= 2.0, "{intercepts}");
    gw.expect_metric(
        "switchyard_requests_total",
        &["config=\"forward\"", "outcome=\"ok\""],
        3.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_requests_total",
        &["config=\"direct\"", "outcome=\"ok\""],
        1.0,
    )
    .await;
    let lines = gw.access_log_lines(4).await;
    assert!(
        lines.iter().filter(|l| l["config"] == "forward").count() >= 3,
        "{lines:?}"
    );
}

#[tokio::test]
async fn plain_http_proxy_requests_are_intercepted_forwarded_or_refused() {
    let mock = mock().await;
    let gw = start(&mock, &format!("\"127.0.0.1:{}\"", mock.addr.port())).await;
    let client = proxied_client(&gw, &[]);

    // An intercepted host over plain HTTP: the gateway path.
    let resp = client
        .post("http://api.openai.com/v1/chat/completions")
        .bearer_auth(APP_KEY)
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let auth = format!("Bearer {PROVIDER_KEY}");
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some(auth.as_str())
    );

    // An allowed host: forwarded untouched (the mock answers its own route).
    let resp = client
        .get(format!(
            "http://127.0.0.1:{}/_mock/requests",
            mock.addr.port()
        ))
        .header("x-test", "forwarded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen: serde_json::Value = resp.json().await.unwrap();
    assert!(seen.as_array().is_some_and(|a| a.len() == 1), "{seen}");

    // Anything else: 403 with an OpenAI-style body.
    let resp = client.get("http://example.com/").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("example.com:80"));
    gw.expect_metric(
        "switchyard_forward_connections_total",
        &["mode=\"refused\""],
        1.0,
    )
    .await;
    gw.expect_metric(
        "switchyard_forward_connections_total",
        &["mode=\"tunnel\""],
        1.0,
    )
    .await;
}

/// A TLS server of the test's own on 127.0.0.1 (certificate for `localhost` and `127.0.0.1`,
/// its own self-signed one): answers any request with its body echoed.
async fn tls_echo_server() -> (u16, String, tokio::task::JoinHandle<()>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&body);
                    let _ = tls.write_all(&out).await;
                    let _ = tls.shutdown().await;
                    return;
                }
            });
        }
    });
    (port, pem, task)
}

/// A plain TCP echo server.
async fn tcp_echo_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn allowed_hosts_get_a_byte_for_byte_tunnel_and_others_403() {
    let mock = mock().await;
    let (tls_port, server_pem, tls_task) = tls_echo_server().await;
    let (tcp_port, tcp_task) = tcp_echo_server().await;
    let closed = harness::free_port();
    let allow = format!(
        "\"127.0.0.1:{tls_port}\", \"127.0.0.1:{tcp_port}\", \"localhost:{closed}\", localhost"
    );
    let gw = start(&mock, &allow).await;

    // HTTPS through the tunnel, verified against the server's own certificate: not intercepted.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let client = proxied_client(&gw, &[server_pem.as_bytes()]);
    let resp = client
        .post(format!("https://127.0.0.1:{tls_port}/echo"))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), payload.as_slice());

    // curl --proxy, where curl is installed.
    // (tokio's Command: the TLS server runs on this test's runtime and must not be blocked.)
    if Command::new("curl").arg("--version").output().is_ok() {
        let ca = gw.dir.path().join("server.pem");
        std::fs::write(&ca, &server_pem).unwrap();
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--proxy", &gw.url("")])
            .arg("--cacert")
            .arg(&ca)
            .args(["--data-binary", "hello through curl"])
            .arg(format!("https://127.0.0.1:{tls_port}/"))
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello through curl",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_connect}",
                "--max-time",
                "20",
            ])
            .args(["--proxy", &gw.url(""), "https://example.com/"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
    }

    // Bytes sent right behind the CONNECT head reach the upstream too, in order.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let target = format!("127.0.0.1:{tcp_port}");
    let mut first = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    first.extend_from_slice(b"early bytes|");
    s.write_all(&first).await.unwrap();
    s.write_all(b"late bytes").await.unwrap();
    let expected = b"HTTP/1.1 200 Connection Established\r\n\r\nearly bytes|late bytes";
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
    drop(s);

    // Not allowed: 403, closed. A bare `localhost` admits port 443 only.
    let other_port = format!("localhost:{tcp_port}");
    for target in ["example.com:443", "127.0.0.2:443", "[::1]:443", &other_port] {
        let out = raw_exchange(&gw, format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes()).await;
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(out.contains("\"code\":\"forbidden\""), "{out}");
        assert!(out.contains(target), "{out}");
    }
    // An allowed host whose port is closed: 502, not a hang.
    let out = raw_exchange(
        &gw,
        format!("CONNECT localhost:{closed} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
    let tunnels = gw
        .metric("switchyard_forward_connections_total", &["mode=\"tunnel\""])
        .await;
    assert!(tunnels >= 3.0, "{tunnels}");
    assert!(
        gw.metric(
            "switchyard_forward_connections_total",
            &["mode=\"refused\""]
        )
        .await
            >= 3.0
    );
    tls_task.abort();
    tcp_task.abort();
}

/// `CONNECT target` answered with a status line starting `HTTP/1.1 {status} `.
async fn connect_status(gw: &Gateway, target: &str) -> String {
    raw_exchange(
        gw,
        format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
    )
    .await
}

/// Issue 17 item 10: `allow_hosts: [localhost]` admitted every port, the gateway's own admin and
/// proxy ports included. Bare entries now admit 443 (CONNECT) / 80 (plain HTTP) only, and no
/// entry, however spelled, reaches the gateway's own listeners.
#[tokio::test]
async fn allow_hosts_never_reach_the_gateways_own_ports() {
    let mock = mock().await;
    // Bare entries, as the finding had them.
    let gw = start(&mock, "localhost, 127.0.0.1, \"::1\", 0.0.0.0").await;
    let (listen, admin) = (gw.addr.port(), gw.admin.port());
    for port in [admin, listen] {
        for host in ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"] {
            let out = connect_status(&gw, &format!("{host}:{port}")).await;
            assert!(out.starts_with("HTTP/1.1 403 "), "{host}:{port}: {out}");
        }
    }
    let client = proxied_client(&gw, &[]);
    let resp = client
        .get(format!("http://localhost:{admin}/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Entries naming the ports explicitly, and a name that resolves to loopback: still refused,
    // after resolution (the check runs on the addresses connected to).
    let mut entries = Vec::new();
    for port in [admin, listen] {
        for host in ["localhost", "127.0.0.1", "[::1]", "0.0.0.0", "127.0.0.2"] {
            entries.push(format!("\"{host}:{port}\""));
        }
    }
    let before = gw
        .metric("switchyard_config_reloads_total", &["result=\"success\""])
        .await;
    gw.rewrite_config(&config(&mock, &entries.join(", ")));
    let reloaded = harness::eventually(Duration::from_secs(20), || async {
        gw.metric("switchyard_config_reloads_total", &["result=\"success\""])
            .await
            > before
    })
    .await;
    assert!(
        reloaded.is_some(),
        "the config was not reloaded:\n{}",
        gw.log()
    );
    for port in [admin, listen] {
        for host in ["localhost", "127.0.0.1", "[::1]", "0.0.0.0", "127.0.0.2"] {
            let target = format!("{host}:{port}");
            let out = connect_status(&gw, &target).await;
            assert!(out.starts_with("HTTP/1.1 403 "), "{target}: {out}");
            assert!(
                out.contains("the gateway's own listener"),
                "{target}: {out}"
            );
        }
    }
    let resp = client
        .get(format!("http://127.0.0.1:{admin}/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client
        .get(format!("http://localhost:{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The gateway still answers on both ports directly.
    let health = gw.admin_get("/healthz").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn bad_inputs_get_clean_errors_and_the_gateway_stays_healthy() {
    let mock = mock().await;
    let gw = start(&mock, "").await;
    let ca = ca_pem(&gw);

    // Malformed CONNECT heads: 400 with a JSON body, then closed.
    let oversized = format!(
        "CONNECT api.openai.com:443 HTTP/1.1\r\n{}",
        "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(400)
    );
    let bad: Vec<Vec<u8>> = vec![
        b"CONNECT api.openai.com HTTP/1.1\r\n\r\n".to_vec(),
        b"CONNECT api.openai.com:99999 HTTP/1.1\r\n\r\n".to_vec(),
        b"CONNECT ::1:443 HTTP/1.1\r\n\r\n".to_vec(),
        b"CONNECT http://api.openai.com:443/ HTTP/1.1\r\n\r\n".to_vec(),
        b"CONNECT  HTTP/1.1\r\n\r\n".to_vec(),
        b"CONNECT \x00\x01\x02\xff\xfe\r\n\r\n".to_vec(),
        b"CONNECT api.openai.com:443 HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        oversized.into_bytes(),
    ];
    for b in &bad {
        let out = raw_exchange(&gw, b).await;
        assert!(
            out.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{:?} → {out}",
            String::from_utf8_lossy(b)
        );
        assert!(out.contains("\"type\":\"invalid_request_error\""), "{out}");
    }

    // A handshake for a name the client did not CONNECT to: no certificate, a TLS alert.
    let tcp = connect(&gw, "api.openai.com:443").await;
    let sni = ServerName::try_from("evil.example.com").unwrap();
    let err = tls_client(&[&ca]).connect(sni, tcp).await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("alert"), "{err}");

    // A client that does not trust the CA refuses the minted certificate.
    let tcp = connect(&gw, "api.openai.com:443").await;
    let sni = ServerName::try_from("api.openai.com").unwrap();
    let other_ca = switchyard::server::forward::ca::generate(1, &[]).unwrap().0;
    let err = tls_client(&[other_ca.as_bytes()])
        .connect(sni, tcp)
        .await
        .unwrap_err();
    // (UnknownIssuer, or BadSignature: the other CA has the same name.)
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    let untrusting = proxied_client(&gw, &[other_ca.as_bytes()]);
    assert!(untrusting
        .post("https://api.openai.com/v1/chat/completions")
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .is_err());

    // A connection that sends nothing after CONNECT's 200, then leaves.
    drop(connect(&gw, "api.openai.com:443").await);

    // Still healthy, and the next app is served.
    let health = gw.admin_get("/healthz").await;
    assert_eq!(health.status(), 200);
    let resp = proxied_client(&gw, &[&ca])
        .post("https://api.openai.com/v1/chat/completions")
        .bearer_auth(APP_KEY)
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        gw.metric(
            "switchyard_forward_connections_total",
            &["mode=\"refused\""]
        )
        .await
            >= bad.len() as f64
    );

    // The CA key is nowhere: not in the log, not on /config, not in /metrics.
    let key = std::fs::read_to_string(gw.dir.path().join("ca.key")).unwrap();
    let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let config = gw.admin_text("/config").await;
    for text in [gw.log(), config, gw.metrics().await] {
        assert!(!text.contains("PRIVATE KEY"));
        for line in &key_body {
            assert!(!text.contains(line), "CA key material leaked");
        }
    }
}

#[tokio::test]
async fn without_a_forward_block_every_proxy_request_is_refused() {
    let mock = mock().await;
    let text = format!(
        "providers:\n  openai: {{ kind: openai, base_url: \"http://{}/v1\", api_key: {PROVIDER_KEY} }}\n",
        mock.addr
    );
    let gw = Gateway::start(&text).await;
    let out = raw_exchange(&gw, b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    assert!(out.contains("not configured"), "{out}");
    let resp = proxied_client(&gw, &[])
        .get("http://api.openai.com/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(mock.requests().is_empty());
    // Base-URL mode is unchanged, including an absolute-form request to the gateway itself.
    let resp = proxied_client(&gw, &[])
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard")
}

#[test]
fn ca_init_writes_the_files_and_check_validates_the_forward_block() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ca");
    let out = switchyard(&["ca", "init", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mode = std::fs::metadata(out_dir.join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = switchyard(&["ca", "init", "--out", out_dir.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let forced = switchyard(&["ca", "init", "--force", "--out", out_dir.to_str().unwrap()]);
    assert!(forced.status.success(), "{forced:?}");

    let check_with = |flags: &[&str], forward: &str, providers: &str| {
        let text = format!("providers:\n{providers}\nforward:\n{forward}\n");
        let path = dir.path().join("switchyard.yaml");
        std::fs::write(&path, text).unwrap();
        let mut args = vec!["check"];
        args.extend_from_slice(flags);
        args.push(path.to_str().unwrap());
        let out = switchyard(&args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let check = |forward: &str, providers: &str| check_with(&[], forward, providers);
    let one = "  openai: { kind: openai, api_key: sk-x }";
    let ok = "  ca_cert: ca/ca.pem\n  ca_key: ca/ca.key";
    let (passed, err) = check(ok, one);
    assert!(passed, "{err}");
    let missing = "  ca_cert: ca/missing.pem\n  ca_key: ca/ca.key";
    let (passed, err) = check_with(&["--strict"], missing, one);
    assert!(
        !passed && err.contains("error: forward.ca_cert: cannot read"),
        "{err}"
    );
    // Without --strict a CA file absent where the config is checked is a warning (issue 19).
    let (_, err) = check(missing, one);
    assert!(
        err.contains("warning: forward.ca_cert: cannot read"),
        "{err}"
    );
    let (passed, err) = check("  ca_cert: ca/ca.pem\n  ca_key: ca/ca.pem", one);
    assert!(!passed && err.contains("forward.ca_key:"), "{err}");
    assert!(!err.contains("BEGIN"), "{err}");
    let (passed, err) = check(&format!("{ok}\n  allow_hosts: [\"*\"]"), one);
    assert!(!passed && err.contains("forward.allow_hosts[0]"), "{err}");
    let (passed, err) = check(&format!("{ok}\n  intercept: [\"api.*.com\"]"), one);
    assert!(!passed && err.contains("forward.intercept[0]"), "{err}");
    // The CA is name-constrained: an intercepted host outside its permitted domains is refused
    // at load; `ca init --permit` widens it.
    let custom = format!(
        "{ok}\n  intercept: [llm.corp.example]\n  providers: {{ llm.corp.example: openai }}"
    );
    let (passed, err) = check(&custom, one);
    assert!(
        !passed
            && err.contains(
                "forward.intercept[0]: the CA's name constraints do not permit llm.corp.example"
            ),
        "{err}"
    );
    let permitted = switchyard(&[
        "ca",
        "init",
        "--force",
        "--permit",
        "llm.corp.example",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(permitted.status.success(), "{permitted:?}");
    let (passed, err) = check(&custom, one);
    assert!(passed, "{err}");
    let bad = switchyard(&[
        "ca",
        "init",
        "--force",
        "--permit",
        "*",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--permit"),
        "{bad:?}"
    );
    // A world-readable key is refused with the file named, never its contents.
    std::fs::set_permissions(
        out_dir.join("ca.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (passed, err) = check(ok, one);
    assert!(
        !passed && err.contains("forward.ca_key:") && err.contains("mode 0644"),
        "{err}"
    );
    assert!(!err.contains("BEGIN"), "{err}");
    std::fs::set_permissions(
        out_dir.join("ca.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // `--force` over a symlink at ca.key replaces the link, never writes through it.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::remove_file(out_dir.join("ca.key")).unwrap();
    std::os::unix::fs::symlink(&victim, out_dir.join("ca.key")).unwrap();
    let forced = switchyard(&["ca", "init", "--force", "--out", out_dir.to_str().unwrap()]);
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(out_dir.join("ca.key"))
        .unwrap()
        .file_type()
        .is_file());
    // Two OpenAI providers, neither at api.openai.com: the host needs an explicit provider.
    let two = "  a: { kind: openai, base_url: \"http://127.0.0.1:1/v1\", api_key: sk-x }\n  b: { kind: openai, base_url: \"http://127.0.0.1:2/v1\", api_key: sk-x }";
    let (passed, err) = check(ok, two);
    assert!(
        !passed && err.contains("forward.intercept[0]: several openai providers (a, b)"),
        "{err}"
    );
    let (passed, err) = check(&format!("{ok}\n  providers: {{ api.openai.com: b }}"), two);
    assert!(passed, "{err}");
    let (passed, err) = check(&format!("{ok}\n  providers: {{ api.example.com: b }}"), two);
    assert!(
        !passed && err.contains("forward.providers.api.example.com"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rotated_ca_is_picked_up_by_hot_reload() {
    let mock = mock().await;
    let gw = start(&mock, "").await;
    let old_ca = ca_pem(&gw);
    let call = |roots: Vec<u8>| {
        let client = proxied_client(&gw, &[&roots]);
        async move {
            client
                .post("https://api.openai.com/v1/chat/completions")
                .bearer_auth(APP_KEY)
                .json(&chat("gpt-4o-mini", false))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    assert_eq!(call(old_ca.clone()).await.unwrap(), 200);
    // `switchyard ca init --force` over the mounted files, as a Secret update would.
    switchyard::server::forward::ca::init_dir(gw.dir.path(), true, 30).unwrap();
    let new_ca = ca_pem(&gw);
    assert_ne!(old_ca, new_ca);
    let rotated = harness::eventually(Duration::from_secs(15), || {
        let c = call(new_ca.clone());
        async move { c.await.ok() == Some(200) }
    })
    .await;
    assert!(rotated.is_some(), "the new CA was not used:\n{}", gw.log());
    // Certificates from the old CA are no longer served.
    assert!(call(old_ca).await.is_err());
}
