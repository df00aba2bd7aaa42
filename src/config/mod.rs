//! Configuration: the YAML users write ([`schema`]), its validation and compilation into the
//! immutable runtime [`Snapshot`] ([`compile`]), secret resolution ([`secrets`]) and hot reload
//! ([`watch`]).

pub mod compile;
pub mod schema;
pub mod secrets;
pub mod snapshot;
pub mod watch;

pub use compile::{
    load_file, load_file_to_serve, load_str, reload_errors, serving_errors, ConfigError,
    ConfigErrors,
};
pub use snapshot::*;
