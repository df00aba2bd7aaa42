//! Configuration: the YAML users write ([`schema`]), its validation and compilation into the
//! immutable runtime [`Snapshot`] ([`compile`]), secret resolution ([`secrets`]) and hot reload
//! ([`watch`]).

pub mod compile;
pub mod schema;
pub mod secrets;
pub mod snapshot;
pub mod watch;

pub use compile::{load_file, load_str, ConfigError, ConfigErrors};
pub use snapshot::*;
