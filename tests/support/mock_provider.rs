//! The fault-injecting mock provider.
