//! The benchmark floor: a bare pingora pass-through proxy with no LLM logic (no virtual keys,
//! routing, metrics or SSE handling), so `benches/gateway.rs` can show what Switchyard adds over
//! pingora itself. `floor --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT`.

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

struct Floor {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let (Some(listen), Some(upstream)) = (arg("--listen"), arg("--upstream")) else {
        eprintln!("usage: floor --listen ADDR --upstream ADDR");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse() else {
        eprintln!("--upstream must be IP:PORT");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, Floor { upstream });
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
