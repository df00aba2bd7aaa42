//! Router: runs a config's strategy tree.
