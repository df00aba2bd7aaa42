//! Configuration: the YAML users write ([`schema`]), its validation and compilation into the
//! immutable runtime [`Snapshot`] ([`compile`]), secret resolution ([`secrets`]) and hot reload
//! ([`watch`]). The forward proxy's CA material ([`ca`]) and host patterns ([`hosts`]) live
//! here too, as the snapshot holds them; `server::forward` uses them from here.

pub mod ca;
pub mod compile;
pub mod error;
pub mod hosts;
pub mod schema;
pub mod secrets;
pub mod snapshot;
pub mod watch;

pub use compile::{
    check_file, load_file, load_file_to_serve, load_str, reload_errors, serving_errors,
};
pub use error::{ConfigError, ConfigErrors};
pub use snapshot::*;
