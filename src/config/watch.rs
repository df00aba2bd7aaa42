//! Hot reload: watch the config's directory, debounce, re-read, validate, swap.
