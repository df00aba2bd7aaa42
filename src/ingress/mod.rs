//! Ingress: virtual-key resolution, config selection, request limits.
