//! The `switchyard` command: `run` the gateway, `check` a config, run the `mock-provider`, a
//! `demo` of the gateway in front of two mock providers, or `ca init` the forward-proxy CA.
//!
//! `mock-provider` and `demo` come with the default cargo feature `demo` (the `switchyard-mock`
//! crate); a build with `--no-default-features` has neither.

#[cfg(feature = "demo")]
mod demo;

#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run the fault-injecting mock provider (OpenAI wire format).
    #[cfg(feature = "demo")]
    MockProvider {
        #[arg(long, default_value = "127.0.0.1:9901")]
        listen: SocketAddr,
    },
    /// Run the gateway on conf/demo.yaml with two mock providers, and print requests to try.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// The local CA of forward-proxy mode (HTTPS_PROXY).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
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
        #[cfg(feature = "demo")]
        Command::MockProvider { listen } => mock_provider(listen),
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
fn mock_provider(listen: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(switchyard_mock::run(listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: mock provider on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}
