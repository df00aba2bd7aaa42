//! Provider passthrough and inline configs end to end (issue 19, items 1-3): the real gateway,
//! the mock provider standing in for api.openai.com through `SWITCHYARD_OPENAI_BASE_URL`.

#[path = "support/gateway.rs"]
mod harness;

use harness::{chat, client, mock, Gateway};
use serde_json::json;

/// A file without virtual keys: passthrough is on by default; `cache` on the passthrough
/// config; one custom host allowed (the mock itself, by host:port).
fn config(mock_host: &str) -> String {
    format!(
        r#"
listen: $LISTEN
admin_listen: $ADMIN
passthrough:
  custom_hosts: ["{mock_host}"]
configs:
  cached:
    provider: openai
    cache: {{ mode: simple }}
"#
    )
}

async fn start(mock_addr: std::net::SocketAddr) -> Gateway {
    let base = format!("http://{mock_addr}/v1");
    Gateway::start_with(
        &config(&mock_addr.to_string()),
        |_| {},
        &[("SWITCHYARD_OPENAI_BASE_URL", base.as_str())],
    )
    .await
}

async fn post(
    gw: &Gateway,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut req = client().post(gw.url("/v1/chat/completions")).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_callers_key_reaches_the_provider_and_nothing_else_keeps_it() {
    let mock = mock().await;
    let gw = start(mock.addr).await;
    let r = post(
        &gw,
        &[("authorization", "Bearer sk-own-key-1")],
        &chat("gpt-4o-mini", false),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-portkey-provider"], "openai");
    let seen = mock.requests();
    assert_eq!(
        seen.last().unwrap().header("authorization"),
        Some("Bearer sk-own-key-1")
    );
    // x-portkey-provider with x-api-key: the key goes in the provider's own header.
    let r = post(
        &gw,
        &[
            ("x-api-key", "sk-own-key-2"),
            ("x-portkey-provider", "openai"),
        ],
        &chat("gpt-4o-mini", true),
    )
    .await;
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer sk-own-key-2"));
    assert_eq!(
        last.header("x-api-key"),
        None,
        "the client's header is not forwarded as well"
    );
    assert_eq!(last.header("x-portkey-provider"), None);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("config=\"passthrough\""),
        "metrics label config=passthrough"
    );
    let lines = gw.access_log_lines(2).await;
    let all = format!(
        "{}{}{}",
        metrics,
        gw.log(),
        serde_json::to_string(&lines).unwrap()
    );
    for key in ["sk-own-key-1", "sk-own-key-2"] {
        assert!(!all.contains(key), "{key} leaked into logs or metrics");
    }
}

#[tokio::test]
async fn cache_entries_of_a_passthrough_config_are_per_caller_key() {
    let mock = mock().await;
    let gw = start(mock.addr).await;
    let body = json!({"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "cache me"}]});
    let call = |key: &'static str| {
        let (gw, body) = (&gw, &body);
        async move {
            let auth = format!("Bearer {key}");
            let r = post(
                gw,
                &[("authorization", &auth), ("x-portkey-config", "cached")],
                body,
            )
            .await;
            assert_eq!(r.status(), 200);
            r.headers()
                .get("x-portkey-cache-status")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        }
    };
    assert_eq!(call("sk-alice").await.to_ascii_lowercase(), "miss");
    assert_eq!(call("sk-alice").await.to_ascii_lowercase(), "hit");
    assert_eq!(
        call("sk-bob").await.to_ascii_lowercase(),
        "miss",
        "another key never sees alice's entry"
    );
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn custom_hosts_only_from_the_list_and_forward_headers_on_request() {
    let mock = mock().await;
    let gw = start(mock.addr).await;
    let allowed = format!("http://{}/v1", mock.addr);
    let r = post(
        &gw,
        &[
            ("authorization", "Bearer sk-own"),
            ("x-portkey-provider", "openai-compatible"),
            ("x-portkey-custom-host", &allowed),
            ("openai-organization", "org-kept"),
            (
                "x-portkey-forward-headers",
                "openai-organization, host, x-portkey-provider",
            ),
        ],
        &chat("m", false),
    )
    .await;
    assert_eq!(r.status(), 200);
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.header("openai-organization"), Some("org-kept"));
    assert_eq!(
        last.header("x-portkey-provider"),
        None,
        "control headers are never forwarded"
    );
    assert_eq!(last.header("x-portkey-forward-headers"), None);
    // Not listed: another port of the same host, and loopback in general.
    let before = mock.requests().len();
    for host in [
        format!("http://127.0.0.1:{}/v1", mock.addr.port() + 1),
        "http://localhost/v1".into(),
    ] {
        let r = post(
            &gw,
            &[
                ("authorization", "Bearer sk-own"),
                ("x-portkey-provider", "openai"),
                ("x-portkey-custom-host", &host),
            ],
            &chat("m", false),
        )
        .await;
        assert_eq!(r.status(), 400, "{host}");
        let e: serde_json::Value = r.json().await.unwrap();
        let m = e["error"]["message"].as_str().unwrap();
        assert!(m.contains("passthrough.custom_hosts"), "{m}");
    }
    assert_eq!(mock.requests().len(), before);
}

#[tokio::test]
async fn inline_configs_route_like_named_ones_and_bad_ones_are_400s_that_cost_nothing() {
    let mock = mock().await;
    let gw = start(mock.addr).await;
    let inline = json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai-compatible", "custom_host": format!("http://{}/fault/status=503/v1", mock.addr), "api_key": "sk-inline-1"},
            {"provider": "openai", "api_key": "sk-inline-2", "override_params": {"model": "gpt-4o"}}
        ]
    })
    .to_string();
    let r = post(
        &gw,
        &[("x-portkey-config", &inline)],
        &chat("gpt-4o-mini", false),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-portkey-last-used-option-index"],
        "config.targets[1]"
    );
    let seen = mock.requests();
    assert_eq!(
        seen.last().unwrap().header("authorization"),
        Some("Bearer sk-inline-2")
    );
    assert!(gw.metrics().await.contains("config=\"inline\""));
    // Malformed ones: each a 400 with a JSON path; the gateway keeps serving.
    let deep = format!("{}{}", "{\"targets\":[".repeat(3000), "]}".repeat(3000));
    for (bad, expect) in [
        ("{nope".to_string(), "not valid JSON"),
        (
            json!({"virtual_key": "vk-none"}).to_string(),
            "$.virtual_key",
        ),
        (
            json!({"provider": "openai", "custom_host": "http://10.0.0.1/v1"}).to_string(),
            "$.custom_host",
        ),
        (
            json!({"targets": [{"provider": "openai"}], "weight": "x"}).to_string(),
            "$.weight",
        ),
        (deep, "inline config"),
    ] {
        let r = post(
            &gw,
            &[("x-portkey-config", &bad), ("authorization", "Bearer k")],
            &chat("m", false),
        )
        .await;
        assert_eq!(r.status(), 400, "{expect}");
        let e: serde_json::Value = r.json().await.unwrap();
        let m = e["error"]["message"].as_str().unwrap().to_string();
        assert!(m.contains(expect), "{expect}: {m}");
        assert!(!m.contains("vk-none"), "{m}");
    }
    let r = post(&gw, &[("authorization", "Bearer k")], &chat("m", false)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_model_at_slug_routes_to_that_virtual_key_or_provider_and_sends_the_model() {
    let mock = mock().await;
    let keyed = format!(
        "listen: $LISTEN\nadmin_listen: $ADMIN\nproviders:\n  up: {{ kind: openai-compatible, base_url: \"http://{}/v1\", api_key: sk-provider }}\nvirtual_keys:\n  openai-prod: {{ provider: up }}\nconfigs:\n  c: {{ virtual_key: openai-prod }}\n",
        mock.addr
    );
    let gw = Gateway::start(&keyed).await;
    // No credential at all: the slug selects the key (Portkey's model catalog).
    let r = post(&gw, &[], &chat("@openai-prod/gpt-4o", false)).await;
    assert_eq!(r.status(), 200);
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.json().unwrap()["model"], "gpt-4o");
    assert_eq!(last.header("authorization"), Some("Bearer sk-provider"));
    for (headers, model, expect) in [
        (&[][..], "@openai-typo/gpt-4o", "names no virtual key"),
        (
            &[("x-portkey-config", "c")][..],
            "@openai-prod/gpt-4o",
            "send one of them",
        ),
        (&[][..], "@openai-prod", "catalog spelling"),
        // With passthrough off, a provider id is no slug.
        (
            &[("authorization", "Bearer sk-own")][..],
            "@openai/gpt-4o",
            "names no virtual key",
        ),
    ] {
        let r = post(&gw, headers, &chat(model, false)).await;
        let status = r.status();
        let e: serde_json::Value = r.json().await.unwrap();
        let m = e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            status,
            if headers.iter().any(|(k, _)| *k == "authorization") {
                401
            } else {
                400
            },
            "{model}: {m}"
        );
        if status == 400 {
            assert!(
                m.contains(expect) && !m.contains("openai-typo"),
                "{model}: {m}"
            );
        }
    }
    // Passthrough: a provider id as the slug, with the caller's own key.
    let gw = start(mock.addr).await;
    let r = post(
        &gw,
        &[("authorization", "Bearer sk-own-3")],
        &chat("@openai/gpt-4o-mini", false),
    )
    .await;
    assert_eq!(r.status(), 200);
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.json().unwrap()["model"], "gpt-4o-mini");
    assert_eq!(last.header("authorization"), Some("Bearer sk-own-3"));
}
