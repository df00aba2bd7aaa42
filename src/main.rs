//! The `switchyard` command: `run` the gateway, `check` a config, run the `mock-provider`, a
//! `demo` of the gateway in front of two mock providers, `ca init` the forward-proxy CA, or
//! `store migrate|prune|export` the request store.
//!
//! `mock-provider` and `demo` come with the default cargo feature `demo` (the `switchyard-mock`
//! crate); a build with `--no-default-features` has neither.

#[cfg(feature = "demo")]
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::store::StoreError;

/// The config `run` serves when no `--config` is given.
const EMBEDDED_DEFAULT: &str = include_str!("../conf/switchyard.yaml");

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "An LLM gateway sidecar on Pingora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (hot-reloads --config; without it, the embedded default).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Proxy listener, instead of the config's `listen` (default 127.0.0.1:8080).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
        /// Admin listener, instead of the config's `admin_listen` (default 127.0.0.1:9090).
        #[arg(long, value_name = "IP:PORT")]
        admin_listen: Option<SocketAddr>,
    },
    /// Validate a config file; prints each error with its YAML path and exits non-zero.
    Check {
        file: PathBuf,
        /// Refuse secrets and files absent here too (unset `${ENV}`, key, CA, token and price
        /// files), as the gateway does at start; without it they are warnings.
        #[arg(long)]
        strict: bool,
    },
    /// Add the Switchyard sidecar to the workloads of Kubernetes manifests (YAML or JSON, one
    /// object, several documents or a List) and print them; `--uninject` removes it. Every
    /// other object passes through unchanged. Reads FILE, or stdin if it is `-` or absent.
    Inject {
        #[arg(value_name = "FILE|-")]
        file: Option<PathBuf>,
        /// Remove the sidecar instead.
        #[arg(long)]
        uninject: bool,
        /// Print nothing on stderr but errors.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        defaults: InjectDefaultsArgs,
    },
    /// Run the fault-injecting mock provider (OpenAI, Anthropic, Gemini wire formats).
    #[cfg(feature = "demo")]
    MockProvider(MockProviderArgs),
    /// Run the gateway on conf/demo.yaml with two mock providers, and print requests to try.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// The local CA of forward-proxy mode (HTTPS_PROXY).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// The request store of a config's `store:` (SQLite file or PostgreSQL).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The mutating admission webhook that injects the sidecar into pods as they are created
    /// (HTTPS `POST /inject`, `GET /healthz`; plain-HTTP `GET /metrics`, `GET /healthz`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Injector {
        #[command(subcommand)]
        command: Option<InjectorCommand>,
        #[command(flatten)]
        args: Box<InjectorArgs>,
    },
}

#[derive(clap::Args)]
struct InjectorArgs {
    /// The HTTPS listener for the API server.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The plain-HTTP listener for /metrics and /healthz.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9091")]
    metrics_listen: SocketAddr,
    /// The serving certificate (PEM chain); reloaded when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    tls_cert: Option<PathBuf>,
    /// The serving certificate's private key (PEM); reloaded when it changes.
    #[arg(long, value_name = "FILE", required = true)]
    tls_key: Option<PathBuf>,
    /// After SIGTERM, keep serving this many seconds (`/healthz` failing) before finishing the
    /// reviews in flight and exiting, while the pod's endpoint removal propagates.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    shutdown_delay: u64,
    #[command(flatten)]
    defaults: InjectDefaultsArgs,
}

#[derive(Subcommand)]
enum InjectorCommand {
    /// Create a private CA and the webhook's serving certificate: DIR/ca.crt, DIR/tls.crt (for
    /// <service>.<namespace>.svc and .svc.cluster.local) and DIR/tls.key (mode 0600); prints
    /// the caBundle (base64 of ca.crt) for the MutatingWebhookConfiguration.
    Certs {
        /// Directory to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The webhook's Service.
        #[arg(long, default_value = "switchyard-injector")]
        service: String,
        /// The Service's namespace.
        #[arg(long, default_value = "switchyard-system")]
        namespace: String,
        /// Validity of both certificates, in days.
        #[arg(long, default_value_t = switchyard::inject::webhook::DEFAULT_DAYS)]
        days: u32,
        /// Replace existing files (a symlink in their place is replaced, never followed).
        #[arg(long)]
        force: bool,
        /// Another DNS name for the serving certificate; repeatable.
        #[arg(long = "dns", value_name = "NAME")]
        dns: Vec<String>,
        /// An IP address for the serving certificate (e.g. 127.0.0.1 for a local test);
        /// repeatable.
        #[arg(long = "ip", value_name = "IP")]
        ip: Vec<std::net::IpAddr>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Apply the schema migrations this build knows (the gateway also does at start).
    Migrate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Remove records past `store.retention` and, for SQLite, over `store.max_bytes`, now.
    Prune {
        #[arg(long, short)]
        config: PathBuf,
        /// Also remove every record older than this (`30d`, `12h`) whatever the retention.
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
    /// Write the requests stored since a time to stdout as JSON lines (attempts, bodies and
    /// feedback included), oldest first.
    Export {
        #[arg(long, short)]
        config: PathBuf,
        /// An age (`24h`, `7d`) or an RFC 3339 time.
        #[arg(long, default_value = "24h")]
        since: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a CA (ECDSA P-256): DIR/ca.pem, DIR/ca.key (mode 0600) and DIR/bundle.pem (the
    /// Mozilla roots plus ca.pem, for SSL_CERT_FILE / REQUESTS_CA_BUNDLE). The CA is name-
    /// constrained to the default intercepted provider domains plus each --permit.
    Init {
        /// Directory to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files (a symlink in their place is replaced, never followed).
        #[arg(long)]
        force: bool,
        /// Another domain (and its subdomains) the CA may sign for; repeatable.
        #[arg(long = "permit", value_name = "DOMAIN")]
        permit: Vec<String>,
        /// Validity of the CA certificate, in days.
        #[arg(long, default_value_t = switchyard::config::ca::DEFAULT_CA_DAYS)]
        days: u32,
    },
}

/// Where a workload's `switchyard.dev/*` annotations say nothing, `switchyard inject` and
/// `switchyard injector` use these.
#[derive(clap::Args, Clone)]
struct InjectDefaultsArgs {
    /// The sidecar image (annotation `switchyard.dev/image`).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// The ConfigMap with the gateway config (`switchyard.dev/config`).
    #[arg(long, value_name = "NAME")]
    config_map: Option<String>,
    /// The Secret with the provider keys (`switchyard.dev/keys-secret`).
    #[arg(long, value_name = "NAME")]
    keys_secret: Option<String>,
    /// The Secret with the forward-proxy CA (`switchyard.dev/ca-secret`).
    #[arg(long, value_name = "NAME")]
    ca_secret: Option<String>,
    /// How apps reach the sidecar (`switchyard.dev/mode`).
    #[arg(long, value_name = "base-url|forward-proxy")]
    mode: Option<String>,
    /// The proxy port on 127.0.0.1 (`switchyard.dev/proxy-port`).
    #[arg(long, value_name = "PORT")]
    proxy_port: Option<u16>,
    /// The admin port: probes and /metrics (`switchyard.dev/admin-port`).
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
}

impl InjectDefaultsArgs {
    /// The injection defaults, or why a flag's value is refused.
    fn defaults(&self) -> Result<switchyard::inject::Defaults, String> {
        use switchyard::inject::{Defaults, Mode};
        let mut d = Defaults::default();
        if let Some(image) = &self.image {
            d.image = image.clone();
        }
        if let Some(name) = &self.config_map {
            d.config_map = name.clone();
        }
        if let Some(name) = &self.keys_secret {
            d.keys_secret = name.clone();
        }
        if let Some(name) = &self.ca_secret {
            d.ca_secret = name.clone();
        }
        if let Some(mode) = &self.mode {
            d.mode = match mode.as_str() {
                "base-url" => Mode::BaseUrl,
                "forward-proxy" => Mode::ForwardProxy,
                other => {
                    return Err(format!(
                        "--mode {other:?}: expected base-url or forward-proxy"
                    ))
                }
            };
        }
        if let Some(port) = self.proxy_port {
            d.proxy_port = port;
        }
        if let Some(port) = self.admin_port {
            d.admin_port = port;
        }
        Ok(d)
    }
}

/// `switchyard inject`: the manifests on stdout, a line per workload and the warnings on
/// stderr; on any refusal, the reasons on stderr, nothing on stdout, exit 1.
fn inject(
    file: Option<PathBuf>,
    uninject: bool,
    quiet: bool,
    args: &InjectDefaultsArgs,
) -> ExitCode {
    use std::io::{Read, Write};
    use switchyard::inject::{rewrite, Action, MAX_INPUT_BYTES};
    let defaults = match args.defaults() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (name, reader): (String, Box<dyn Read>) = match file.as_deref() {
        None => ("stdin".into(), Box::new(std::io::stdin())),
        Some(p) if p.as_os_str() == "-" => ("stdin".into(), Box::new(std::io::stdin())),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => (p.display().to_string(), Box::new(f)),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let mut input = String::new();
    match reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_string(&mut input)
    {
        Ok(n) if n > MAX_INPUT_BYTES => {
            eprintln!("error: {name}: larger than {} MiB", MAX_INPUT_BYTES >> 20);
            return ExitCode::FAILURE;
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("error: {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let action = if uninject {
        Action::Uninject
    } else {
        Action::Inject
    };
    match rewrite(&input, action, &defaults) {
        Ok(done) => {
            if !quiet {
                for line in done.summary.iter().map(|l| l.as_str()) {
                    eprintln!("{line}");
                }
            }
            for warning in &done.warnings {
                eprintln!("warning: {warning}");
            }
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(done.output.as_bytes())
                .and_then(|()| stdout.flush())
            {
                eprintln!("error: writing the manifests: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("nothing written: {} error(s)", errors.len());
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run {
            config,
            listen,
            admin_listen,
        } => run(config, listen, admin_listen),
        Command::Check { file, strict } => check(&file, strict),
        Command::Inject {
            file,
            uninject,
            quiet,
            defaults,
        } => inject(file, uninject, quiet, &defaults),
        #[cfg(feature = "demo")]
        Command::MockProvider(args) => mock_provider(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args),
        Command::Ca {
            command:
                CaCommand::Init {
                    out,
                    force,
                    days,
                    permit,
                },
        } => ca_init(&out, force, days, &permit),
        Command::Store { command } => store(command),
        Command::Injector {
            command: Some(command),
            ..
        } => injector_certs(command),
        Command::Injector {
            command: None,
            args,
        } => injector(*args),
    }
}

fn injector(args: InjectorArgs) -> ExitCode {
    let defaults = match args.defaults.defaults() {
        Ok(defaults) => defaults,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) else {
        eprintln!("error: --tls-cert and --tls-key are required");
        return ExitCode::FAILURE;
    };
    let options = switchyard::inject::webhook::InjectorOptions {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        cert: switchyard::inject::webhook::CertFiles { cert, key },
        defaults,
        shutdown_delay: std::time::Duration::from_secs(args.shutdown_delay),
    };
    match switchyard::inject::webhook::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn injector_certs(command: InjectorCommand) -> ExitCode {
    let InjectorCommand::Certs {
        out,
        service,
        namespace,
        days,
        force,
        dns,
        ip,
    } = command;
    let options = switchyard::inject::webhook::CertsOptions {
        out,
        service,
        namespace,
        days,
        force,
        dns,
        ips: ip,
    };
    match switchyard::inject::webhook::write_certs(&options) {
        Ok(written) => {
            for p in &written.files {
                eprintln!("wrote {}", p.display());
            }
            println!("{}", written.ca_bundle);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `since` as microseconds since the epoch: an age before now, or an RFC 3339 time.
fn since_us(since: &str) -> Result<i64, StoreError> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(since, rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1000) as i64);
    }
    let age = switchyard::config::schema::parse_duration(since, 1000)
        .map_err(|e| StoreError::Invalid(format!("{e} (or an RFC 3339 time)")))?;
    Ok(switchyard::store::now_us() - switchyard::store::micros(age))
}

/// Runs one `switchyard store` command; its summary line.
async fn store_command(
    command: StoreCommand,
    settings: &switchyard::config::StoreSettings,
) -> Result<String, StoreError> {
    use switchyard::store::cli;
    match command {
        StoreCommand::Migrate { .. } => cli::migrate(settings).await.map(|()| "migrated".into()),
        StoreCommand::Prune { older_than, .. } => {
            let mut removed = cli::prune(settings).await?;
            if let Some(age) = older_than {
                removed += cli::prune_older(settings, since_us(&age)?).await?;
            }
            Ok(format!("removed {removed} requests"))
        }
        StoreCommand::Export { since, .. } => {
            let since = since_us(&since)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let n = cli::export(settings, since, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            Ok(format!("exported {n} requests"))
        }
    }
}

/// The runtime `builder` makes (I/O and timers on), or `None` with the reason printed.
fn runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            None
        }
    }
}

fn store(command: StoreCommand) -> ExitCode {
    let config = match &command {
        StoreCommand::Migrate { config }
        | StoreCommand::Prune { config, .. }
        | StoreCommand::Export { config, .. } => config.clone(),
    };
    let settings = match switchyard::config::load_file(&config).map(|s| s.store) {
        Ok(Some(store)) => store,
        Ok(None) => {
            eprintln!("error: {} has no store: section", config.display());
            return ExitCode::FAILURE;
        }
        Err(errors) => {
            report(&errors);
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(store_command(command, &settings)) {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ca_init(out: &std::path::Path, force: bool, days: u32, permit: &[String]) -> ExitCode {
    match switchyard::config::ca::init_dir_with(out, force, days, permit) {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(errors: &switchyard::config::ConfigErrors) {
    for e in &errors.0 {
        eprintln!("error: {e}");
    }
}

fn run(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
) -> ExitCode {
    let loaded = match &config {
        Some(path) => switchyard::config::load_file(path),
        None => switchyard::config::load_str(EMBEDDED_DEFAULT, None),
    };
    let mut snapshot = match loaded {
        Ok(s) => s,
        Err(errors) => {
            report(&errors);
            return ExitCode::FAILURE;
        }
    };
    // The listeners are bound once; a reload never moves them.
    snapshot.listen = listen.unwrap_or(snapshot.listen);
    snapshot.admin_listen = admin_listen.unwrap_or(snapshot.admin_listen);
    for w in &snapshot.warnings {
        tracing::warn!(warning = %w, "config");
    }
    for e in switchyard::config::serving_errors(&snapshot) {
        tracing::warn!(error = %e, "the config serves nothing yet; `switchyard check` refuses it");
    }
    serve(snapshot, config)
}

fn serve(snapshot: switchyard::config::Snapshot, config: Option<PathBuf>) -> ExitCode {
    match switchyard::server::run(snapshot, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &std::path::Path, strict: bool) -> ExitCode {
    // What a reload would accept: an empty file, no providers or an all-401 config fail here.
    match switchyard::config::check_file(file, strict) {
        Ok(snapshot) => {
            println!(
                "{}: ok ({} providers, {} virtual keys, {} configs, hash {})",
                file.display(),
                snapshot.providers.len(),
                snapshot.virtual_keys.len(),
                snapshot.configs.len(),
                snapshot.hash
            );
            for w in &snapshot.warnings {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err((errors, warnings)) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            report(&errors);
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "demo")]
#[derive(clap::Args)]
struct MockProviderArgs {
    #[arg(long, default_value = "127.0.0.1:9901")]
    listen: SocketAddr,
    /// Serve HTTPS, with a certificate for localhost and 127.0.0.1 signed by a fresh CA.
    #[arg(long, requires = "ca_out")]
    tls: bool,
    /// With --tls: write that CA's PEM here (for clients to trust).
    #[arg(long, value_name = "PATH", requires = "tls")]
    ca_out: Option<PathBuf>,
    /// With --tls: the ALPN protocols, in preference order; `h2` serves HTTP/2, anything else
    /// HTTP/1.1; an empty list offers none.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "h2,http/1.1",
        requires = "tls"
    )]
    alpn: Vec<String>,
    /// With --tls: wait this long after accepting each connection, before its TLS handshake.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "tls")]
    handshake_delay_ms: u64,
}

#[cfg(feature = "demo")]
fn mock_provider(args: MockProviderArgs) -> ExitCode {
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))
    else {
        return ExitCode::FAILURE;
    };
    let listen = args.listen;
    let served = match (args.tls, args.ca_out) {
        (true, Some(ca_out)) => {
            let options = switchyard_mock::TlsOptions {
                alpn: (args.alpn.iter())
                    .filter(|p| !p.is_empty())
                    .map(|p| p.as_bytes().to_vec())
                    .collect(),
                handshake_delay: std::time::Duration::from_millis(args.handshake_delay_ms),
            };
            runtime.block_on(switchyard_mock::run_tls(listen, options, &ca_out))
        }
        _ => runtime.block_on(switchyard_mock::run(listen)),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: mock provider on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}
