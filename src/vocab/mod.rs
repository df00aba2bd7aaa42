//! The shared vocabulary of the gateway: wire formats, provider and limit kinds, the gateway's
//! own error type and the header names several modules know. This is the leaf of the layering:
//! it imports nothing from the crate, and every other module may import it
//! (`scripts/check-imports` checks both).

pub mod error;
pub mod format;
pub mod headers;
pub mod kinds;

pub use error::{GatewayError, PathError};
pub use format::{gemini_route, ClientFormat, Format, GeminiMethod, GeminiRoute};
pub use kinds::{LimitKind, ProviderKind};
