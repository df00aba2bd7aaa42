//! The config file as users write it (DESIGN.md §4): serde types, `deny_unknown_fields`.
