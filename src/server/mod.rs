//! The pingora server: the app-facing proxy service on `listen` ([`proxy`]: pingora's glue
//! around the request [`pipeline`](crate::pipeline)), fronted on the same listener by forward-proxy mode
//! ([`forward`]: `CONNECT`, TLS interception, tunnels), the admin service ([`admin`]) on
//! `admin_listen`, the config reloader, and draining shutdown ([`shutdown`]).

pub mod admin;
pub mod downstream;
pub mod forward;
pub mod proxy;
pub mod shutdown;
pub mod warm;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::OtlpConfig;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::otlp::{OtlpExporter, OtlpSettings};
use arc_swap::ArcSwap;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;

use crate::config::watch::Reloader;
use crate::config::Snapshot;
use crate::pipeline::Pipeline;
use crate::telemetry::Metrics;
use crate::upstream::{Prewarmer, UpstreamClient};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start the config watcher: {0}")]
    Watch(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// The OTLP exporter: the config file's `telemetry.otlp`, else the standard
/// `OTEL_EXPORTER_OTLP_*` variables; none when neither asks for one. Read at start (a change
/// needs a restart).
fn start_otlp(config: Option<&OtlpConfig>) -> Option<OtlpExporter> {
    let settings = match config {
        Some(c) => {
            let mut s = OtlpSettings::new(c.endpoint.clone());
            s.headers = c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect();
            s.service_name = c.service_name.clone();
            s.timeout = c.timeout;
            s
        }
        None => OtlpSettings::from_env()?,
    };
    match OtlpExporter::start(settings) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "OTLP export is off: cannot start the exporter");
            None
        }
    }
}

/// Builds and runs the server until shutdown. `config_path` enables hot reload (the embedded
/// default config has no file to watch).
pub fn run(snapshot: Snapshot, config_path: Option<PathBuf>) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::new()?);
    metrics.set_config_hash(&snapshot.hash);
    let (listen, admin_listen) = (snapshot.listen, snapshot.admin_listen);
    let (threads, grace) = (snapshot.threads, snapshot.shutdown_grace);
    let otlp = start_otlp(snapshot.telemetry.otlp.as_ref()).map(Arc::new);
    // Read at start, like OTLP: an unusable SQLite file stops the start with its reason.
    let store = match &snapshot.store {
        Some(settings) => Some(Arc::new(crate::store::Store::open(
            settings,
            metrics.store.clone(),
        )?)),
        None => None,
    };
    let live = Arc::new(ArcSwap::from_pointee(snapshot));
    let drain = shutdown::Drain::new();
    // The watcher stops when its handle drops: it is held until the server returns.
    let (reloader, _reload_task) = match config_path {
        Some(path) => {
            let reloader = Arc::new(Reloader::new(path, live.clone(), metrics.clone()));
            let task = reloader.clone().spawn()?;
            (Some(reloader), Some(task))
        }
        None => (None, None),
    };
    let conf = ServerConf {
        threads,
        // We drain ourselves (see `shutdown`); pingora's grace is a fixed sleep.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let pipeline = start_pipeline(
        &live,
        &metrics,
        otlp.clone(),
        reloader.clone(),
        store.clone(),
    );
    let console = pipeline.console.clone();
    let prewarm = Prewarmer::new(pipeline.client.clone(), live.clone());
    let forwarder = Arc::new(forward::Forwarder::new(&metrics, &[listen, admin_listen]));
    let gateway = proxy::Gateway {
        live: live.clone(),
        drain: drain.clone(),
        forward: forwarder.clone(),
        pipeline,
    };
    let proxy_service = proxy_service(&server, gateway, forwarder, &metrics);
    let mut admin_service = Service::new(
        "switchyard-admin".to_string(),
        admin::Admin {
            live,
            metrics,
            drain: drain.clone(),
            reloader,
            console,
            store: store.clone(),
            prewarm: prewarm.clone(),
            proxy_up: Default::default(),
        },
    );
    admin_service.threads = Some(1);
    admin_service.add_tcp(&admin_listen.to_string());
    server.add_service(warm::WithPrewarm {
        inner: proxy_service,
        prewarm,
    });
    server.add_service(admin_service);
    tracing::info!(%listen, %admin_listen, threads, "switchyard serving");
    server.run(RunArgs {
        shutdown_signal: Box::new(shutdown::DrainingShutdown {
            drain,
            grace,
            otlp,
            store,
        }),
    });
    Ok(())
}

/// The request pipeline's shared parts. Where telemetry, limit state and shared cache entries
/// go is fixed at start; prices, log_bodies, limits and each config's cache follow reloads.
fn start_pipeline(
    live: &Arc<ArcSwap<Snapshot>>,
    metrics: &Arc<Metrics>,
    otlp: Option<Arc<OtlpExporter>>,
    reloader: Option<Arc<Reloader>>,
    store: Option<Arc<crate::store::Store>>,
) -> Pipeline {
    let snapshot = live.load();
    let access_log = AccessLog::start(
        snapshot.telemetry.access_log.target.clone(),
        snapshot.telemetry.access_log.buffer_lines,
    );
    let governance = Arc::new(crate::governance::Governance::new(
        snapshot.state.as_ref(),
        metrics.governance.clone(),
    ));
    let cache = Arc::new(crate::cache::Cache::new(
        snapshot.state.as_ref(),
        metrics.cache_requests_total.clone(),
    ));
    let breakers = Arc::new(crate::router::Breakers::new(Some(
        metrics.circuit_state.clone(),
    )));
    Pipeline {
        client: UpstreamClient::with_metrics(metrics.connections.clone()),
        metrics: metrics.clone(),
        breakers: breakers.clone(),
        console: crate::console::Console::new(metrics.clone(), breakers, live.clone(), reloader),
        access_log,
        otlp,
        governance,
        cache,
        feedback_book: Default::default(),
        store,
    }
}

/// The proxy listener: forward-proxy mode's CONNECT handling in front of the HTTP app, with
/// the connection cap and the file-descriptor reserve for the admin port.
fn proxy_service(
    server: &Server,
    gateway: proxy::Gateway,
    forwarder: Arc<forward::Forwarder>,
    metrics: &Metrics,
) -> Service<forward::ForwardApp<proxy::Gateway>> {
    let live = gateway.live.clone();
    let listen = live.load().listen;
    // Raised before the listeners open; the connection cap keeps fds back for the admin port.
    let fd_cap = downstream::raise_fd_limit();
    let max_connections = live.load().limits.max_connections;
    if fd_cap < max_connections {
        tracing::warn!(
            fd_cap,
            max_connections,
            "the file-descriptor limit caps proxy connections below limits.max_connections"
        );
    }
    let downstream = Arc::new(downstream::Listener::new(&metrics.downstream, fd_cap));
    downstream.spawn_trimmer();
    // The HTTP app behind forward-proxy mode's CONNECT handling (which passes every other
    // connection straight through).
    let app = forward::ForwardApp {
        proxy: Arc::new(pingora::proxy::http_proxy(&server.configuration, gateway)),
        live,
        forwarder,
        downstream,
    };
    let mut service = Service::new("switchyard".to_string(), app);
    service.add_listener(
        ListenerConfig::tcp(listen.to_string()).l4_buffer(L4BufferSettings::default().read(0)),
    );
    service
}
