//! Issue 17 finding 5: the admin port answers only to IP literals, `localhost` and configured
//! names (421 otherwise: DNS rebinding), an optional bearer token guards everything but the
//! probes and `/metrics`, virtual-key names (bearer credentials) are shown as hashes, and a
//! broken reload never echoes the config's source text or values.

#[path = "support/gateway.rs"]
mod harness;

use std::time::Duration;

use harness::{chat, check_config, eventually, mock, Gateway};
use switchyard::config::key_label;
use switchyard_mock::MockHandle;

const TOKEN: &str = "admin-token-0123456789abcdef";

fn config(to: &MockHandle, extra: &str) -> String {
    format!(
        "providers:\n  up: {{ kind: openai-compatible, base_url: \"http://{}/v1\", api_key: sk-live-SECRET }}\nvirtual_keys:\n  vk-secret-name: {{ provider: up, limits: {{ rpm: 1000 }} }}\n{extra}",
        to.addr
    )
}

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(gw.admin_url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("admin request")
}

async fn status(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> u16 {
    get(gw, path, headers).await.status().as_u16()
}

#[tokio::test]
async fn the_host_header_must_be_an_ip_literal_localhost_or_a_configured_name() {
    let up = mock().await;
    let gw = Gateway::start(&config(
        &up,
        "admin: { allowed_hosts: [switchyard.internal] }\n",
    ))
    .await;
    let port = gw.admin.port().to_string();
    for host in [
        "evil.example",
        "evil.example:9090",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "[::1",
        "[evil]:80",
        "127.0.0.1:x",
    ] {
        for path in ["/config", "/metrics", "/healthz", "/", "/events"] {
            assert_eq!(
                status(&gw, path, &[("host", host)]).await,
                421,
                "{host} {path}"
            );
        }
    }
    let ok_hosts = [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".into(),
        "localhost".into(),
        format!("LocalHost:{port}"),
        "[::1]".into(),
        format!("[::1]:{port}"),
        "10.1.2.3:9090".into(),
        "switchyard.internal".into(),
        format!("switchyard.internal:{port}"),
    ];
    for host in &ok_hosts {
        assert_eq!(
            status(&gw, "/config", &[("host", host)]).await,
            200,
            "{host}"
        );
    }
}

#[tokio::test]
async fn the_admin_token_guards_config_api_and_console_but_not_probes_or_metrics() {
    let up = mock().await;
    let token_file =
        |dir: &std::path::Path| std::fs::write(dir.join("admin.token"), TOKEN).unwrap();
    let gw = Gateway::start_with(
        &config(&up, "admin: { token_file: admin.token }\n"),
        token_file,
        &[],
    )
    .await;
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(status(&gw, open, &[]).await, 200, "{open}");
    }
    let bearer = format!("Bearer {TOKEN}");
    for guarded in [
        "/config",
        "/api/console",
        "/api/requests/1",
        "/",
        "/index.html",
        "/console.js",
        "/events",
    ] {
        assert_eq!(status(&gw, guarded, &[]).await, 401, "{guarded}");
        let wrong = status(
            &gw,
            guarded,
            &[("authorization", "Bearer admin-token-0123456789abcdeX")],
        );
        assert_eq!(wrong.await, 401, "{guarded}");
        assert_eq!(
            status(&gw, guarded, &[("cookie", "switchyard_admin=nope")]).await,
            401,
            "{guarded}"
        );
    }
    let resp = get(&gw, "/config", &[]).await;
    assert!(resp.headers().contains_key("www-authenticate"));
    assert!(!resp.text().await.unwrap().contains(TOKEN));
    for guarded in ["/config", "/api/console", "/"] {
        assert_eq!(
            status(&gw, guarded, &[("authorization", &bearer)]).await,
            200,
            "{guarded}"
        );
    }
    // The browser path: `/?token=` once, then the cookie (never the token itself).
    let resp = get(&gw, &format!("/?token={TOKEN}"), &[]).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    for guarded in ["/", "/console.js", "/api/console", "/config"] {
        assert_eq!(
            status(&gw, guarded, &[("cookie", &pair)]).await,
            200,
            "{guarded}"
        );
    }
    assert_eq!(status(&gw, "/?token=wrong", &[]).await, 401);
    // The console's live stream (EventSource sends the same-origin cookie).
    let events = get(&gw, "/events", &[("cookie", &pair)]).await;
    assert_eq!(events.status().as_u16(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    drop(events);

    // A rotated token file is picked up on reload; the old token stops working.
    let rotated = "rotated-token-fedcba9876543210";
    let tmp = gw.dir.path().join("admin.token.tmp");
    std::fs::write(&tmp, rotated).unwrap();
    std::fs::rename(&tmp, gw.dir.path().join("admin.token")).unwrap();
    let new_bearer = format!("Bearer {rotated}");
    let switched = eventually(Duration::from_secs(5), || async {
        status(&gw, "/config", &[("authorization", &new_bearer)]).await == 200
    })
    .await;
    assert!(switched.is_some(), "rotation not picked up:\n{}", gw.log());
    assert_eq!(
        status(&gw, "/config", &[("authorization", &bearer)]).await,
        401
    );
    assert_eq!(status(&gw, "/config", &[("cookie", &pair)]).await, 401);
}

#[tokio::test]
async fn virtual_key_names_are_shown_and_labelled_as_hashes() {
    let up = mock().await;
    let gw = Gateway::start(&config(
        &up,
        "configs:\n  chat: { virtual_key: vk-secret-name }\n",
    ))
    .await;
    let label = key_label("vk-secret-name", false);
    assert!(label.starts_with("vk:"), "{label}");
    let client = reqwest::Client::new();
    for config in [None, Some("chat")] {
        let mut req = client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-secret-name")
            .json(&chat("m", false));
        if let Some(c) = config {
            req = req.header("x-portkey-config", c);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 200);
    }
    // Spend (`switchyard_cost_usd_total`, or `_cost_unknown_total` for an unpriced model) and
    // the governance gauges carry the key.
    let lines = gw.access_log_lines(2).await;
    let labelled = format!("virtual_key=\"{label}\"");
    let counted = eventually(Duration::from_secs(5), || async {
        gw.metric("switchyard_cost_usd_total", &[&labelled]).await
            + gw.metric("switchyard_cost_unknown_total", &[&labelled])
                .await
            > 0.0
    })
    .await;
    let metrics = gw.metrics().await;
    assert!(counted.is_some(), "{metrics}");
    assert!(!metrics.contains("vk-secret-name"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "switchyard_limit_remaining{{limit=\"rpm\",virtual_key=\"{label}\"}}"
        )) || metrics.contains(&format!("virtual_key=\"{label}\",limit=\"rpm\"")),
        "{metrics}"
    );
    let config = get(&gw, "/config", &[]).await.text().await.unwrap();
    assert!(
        !config.contains("vk-secret-name") && config.contains(&label),
        "{config}"
    );
    let console = get(&gw, "/api/console", &[]).await.text().await.unwrap();
    assert!(!console.contains("vk-secret-name"), "{console}");
    assert!(
        lines.iter().all(|l| l["virtual_key"] == label.as_str()),
        "{lines:?}"
    );
    assert!(!gw.log().contains("vk-secret-name"));
}

#[tokio::test]
async fn key_labels_name_keeps_the_names() {
    let up = mock().await;
    let gw = Gateway::start(&config(&up, "telemetry: { key_labels: name }\n")).await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-secret-name")
        .json(&chat("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let counted = eventually(Duration::from_secs(5), || async {
        gw.metrics()
            .await
            .contains("virtual_key=\"vk-secret-name\"")
    })
    .await;
    assert!(counted.is_some(), "{}", gw.metrics().await);
}

/// A broken line right under `api_key:`: the parser's message quotes the lines around it.
const BROKEN: &str = "providers:\n  up:\n    kind: openai-compatible\n    api_key: sk-live-SECRET\n   base_url: [\"http://127.0.0.1:1/v1\"\nvirtual_keys:\n  vk-secret-name: { provider: up }\n";
/// A reference error under a key: the path holds the key's name.
const MISREFERENCED: &str = "providers:\n  up: { kind: openai-compatible, api_key: sk-live-SECRET }\nvirtual_keys:\n  vk-secret-name: { provider: nowhere }\n";
/// A value of the wrong type: serde's message quotes the value.
const MISTYPED: &str = "providers:\n  up: { kind: openai-compatible, api_key: sk-live-SECRET, headers: sk-live-SECRET }\nvirtual_keys:\n  vk-secret-name: { provider: up }\n";

#[test]
fn check_never_prints_source_text_or_values() {
    for text in [BROKEN, MISTYPED] {
        let (ok, out, err) = check_config(text);
        assert!(!ok);
        assert!(
            !out.contains("SECRET") && !err.contains("SECRET"),
            "{out}{err}"
        );
    }
    let (_, _, err) = check_config(BROKEN);
    // The file is named (issue 19), the line and column given, no source text quoted.
    assert!(
        err.contains("invalid YAML in ") && err.contains("c.yaml at line"),
        "{err}"
    );
    let (_, _, err) = check_config(MISTYPED);
    assert!(err.contains("providers.up.headers"), "{err}");
}

#[tokio::test]
async fn a_broken_reload_never_echoes_the_secret() {
    let up = mock().await;
    let gw = Gateway::start(&config(&up, "")).await;
    let mut refusals = 0.0;
    for text in [BROKEN, MISTYPED, MISREFERENCED] {
        gw.rewrite_config(text);
        let counted = eventually(Duration::from_secs(5), || async {
            gw.metric("switchyard_config_reloads_total", &[r#"result="error""#])
                .await
                > refusals
        })
        .await;
        assert!(counted.is_some(), "refusal not counted:\n{}", gw.log());
        refusals = gw
            .metric("switchyard_config_reloads_total", &[r#"result="error""#])
            .await;
        let config = get(&gw, "/config", &[]).await.text().await.unwrap();
        assert!(config.contains("last_reload_error\":\""), "{config}");
        let console = get(&gw, "/api/console", &[]).await.text().await.unwrap();
        assert!(console.contains("last_reload_error\":\""), "{console}");
        for (what, text) in [
            ("/config", config),
            ("/api/console", console),
            ("log", gw.log()),
        ] {
            assert!(!text.contains("SECRET"), "{what}: {text}");
            assert!(!text.contains("vk-secret-name"), "{what}: {text}");
        }
    }
}
