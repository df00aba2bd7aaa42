//! The label set of every labelled metric family: each struct's fields are its labels, in the
//! order they are registered, with the label names declared once beside them. Values are
//! borrowed (`&str`) or small enums with fixed labels; they must stay bounded (config names,
//! provider kinds, configured models or `other`, fixed sets).

use super::family::LabelSet;
use crate::telemetry::AttemptResult;

/// A label struct of borrowed `&str` values and its [`LabelSet`]: `field: "label name"`.
macro_rules! label_struct {
    (
        $(#[$doc:meta])*
        $name:ident [$n:literal] { $($(#[$fdoc:meta])* $field:ident: $label:literal),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<'a> {
            $($(#[$fdoc])* pub $field: &'a str,)+
        }

        impl LabelSet<$n> for $name<'static> {
            const NAMES: [&'static str; $n] = [$($label),+];
            type Of<'a> = $name<'a>;
            fn values<'a>(labels: &Self::Of<'a>) -> [&'a str; $n] {
                [$(labels.$field),+]
            }
        }
    };
}

/// A one-label enum with fixed values and its [`LabelSet`]: `Variant = "value"`.
macro_rules! label_enum {
    (
        $(#[$doc:meta])*
        $name:ident [$n:literal] $label:literal { $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; $n] = [$($name::$variant),+];

            /// Its label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }

        impl LabelSet<1> for $name {
            const NAMES: [&'static str; 1] = [$label];
            type Of<'a> = $name;
            fn values<'a>(labels: &Self::Of<'a>) -> [&'a str; 1] {
                [labels.as_str()]
            }
        }
    };
}

label_struct! {
    /// `switchyard_requests_total`.
    RequestLabels[3] {
        config: "config",
        /// `2xx`, `4xx`, `5xx`, …
        status_class: "status_class",
        /// `ok`, `fallback_ok`, `error`, `timeout`, `cache_hit`, …
        outcome: "outcome",
    }
}

label_struct! {
    /// `switchyard_request_duration_seconds`, `switchyard_overhead_seconds`.
    ConfigLabel[1] { config: "config" }
}

/// `switchyard_upstream_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamAttemptLabels<'a> {
    pub config: &'a str,
    /// The target's option-index path (`config.targets[1]`).
    pub target: &'a str,
    /// The provider's name under `providers:`.
    pub provider: &'a str,
    /// A configured model, else `other`.
    pub model: &'a str,
    pub result: AttemptResult,
}

impl LabelSet<5> for UpstreamAttemptLabels<'static> {
    const NAMES: [&'static str; 5] = ["config", "target", "provider", "model", "result"];
    type Of<'a> = UpstreamAttemptLabels<'a>;
    fn values<'a>(l: &Self::Of<'a>) -> [&'a str; 5] {
        [l.config, l.target, l.provider, l.model, l.result.as_str()]
    }
}

label_struct! {
    /// `switchyard_upstream_duration_seconds`, `switchyard_time_to_first_token_seconds`.
    TargetLabels[3] {
        target: "target",
        provider: "provider",
        model: "model",
    }
}

label_enum! {
    /// `switchyard_config_reloads_total`.
    ReloadResult[2] "result" {
        Success = "success",
        Error = "error",
    }
}

label_struct! {
    /// `switchyard_config_info`.
    ConfigHash[1] { hash: "hash" }
}

/// `switchyard_fallbacks_total`: the target a request moved on from, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackLabels<'a> {
    pub config: &'a str,
    pub from_target: &'a str,
    pub reason: AttemptResult,
}

impl LabelSet<3> for FallbackLabels<'static> {
    const NAMES: [&'static str; 3] = ["config", "from_target", "reason"];
    type Of<'a> = FallbackLabels<'a>;
    fn values<'a>(l: &Self::Of<'a>) -> [&'a str; 3] {
        [l.config, l.from_target, l.reason.as_str()]
    }
}

/// `switchyard_retries_total`: the target retried, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLabels<'a> {
    pub config: &'a str,
    pub target: &'a str,
    pub reason: AttemptResult,
}

impl LabelSet<3> for RetryLabels<'static> {
    const NAMES: [&'static str; 3] = ["config", "target", "reason"];
    type Of<'a> = RetryLabels<'a>;
    fn values<'a>(l: &Self::Of<'a>) -> [&'a str; 3] {
        [l.config, l.target, l.reason.as_str()]
    }
}

label_struct! {
    /// `switchyard_circuit_state`.
    CircuitLabel[1] { target: "target" }
}

label_struct! {
    /// `switchyard_guardrail_verdicts_total`.
    GuardrailLabels[3] {
        config: "config",
        /// A configured check name, or the check kind.
        check: "check",
        /// `pass`, `warn`, `deny`, `fallback`, `redact`.
        verdict: "verdict",
    }
}

label_enum! {
    /// `switchyard_forward_connections_total`.
    ForwardMode[3] "mode" {
        Intercept = "intercept",
        Tunnel = "tunnel",
        Refused = "refused",
    }
}

label_struct! {
    /// `switchyard_cache_requests_total`.
    CacheLabels[2] {
        config: "config",
        /// `hit`, `semantic_hit`, `miss`, `refresh`, `bypass`, `error`.
        result: "result",
    }
}

label_struct! {
    /// `switchyard_limit_rejections_total`, `switchyard_limit_remaining`.
    LimitLabels[2] {
        /// The key's label (a name or hash, never the credential).
        virtual_key: "virtual_key",
        /// `rpm`, `tpm`, `concurrent`, `usd_per_day`, `usd_per_month`, `state_unavailable`.
        limit: "limit",
    }
}

label_enum! {
    /// `switchyard_state_errors_total`: the shared-state call that failed or was skipped.
    StateOp[4] "op" {
        Admit = "admit",
        Settle = "settle",
        Renew = "renew",
        /// A settlement dropped because too many were pending.
        SettleDropped = "settle_dropped",
    }
}

label_enum! {
    /// `switchyard_downstream_closed_total`: why the gateway cut a proxy-listener connection.
    CloseReason[5] "reason" {
        OverCapacity = "over_capacity",
        HeaderTimeout = "header_timeout",
        HeaderTooLarge = "header_too_large",
        BodyTooSlow = "body_too_slow",
        WriteStalled = "write_stalled",
    }
}

label_struct! {
    /// `gen_ai_client_operation_time_to_first_chunk_seconds`,
    /// `gen_ai_client_operation_time_per_output_chunk_seconds`.
    GenAiLabels[3] {
        /// `chat`, `embeddings`, … (`gen_ai.operation.name`).
        operation: "gen_ai_operation_name",
        /// The provider kind (`gen_ai.provider.name`).
        provider: "gen_ai_provider_name",
        /// A configured model, else `other`.
        model: "gen_ai_request_model",
    }
}

label_struct! {
    /// `gen_ai_client_operation_duration_seconds`.
    GenAiCallLabels[4] {
        operation: "gen_ai_operation_name",
        provider: "gen_ai_provider_name",
        model: "gen_ai_request_model",
        /// Empty on success, else the attempt's result.
        error_type: "error_type",
    }
}

label_struct! {
    /// `gen_ai_client_token_usage`.
    GenAiTokenLabels[4] {
        operation: "gen_ai_operation_name",
        provider: "gen_ai_provider_name",
        model: "gen_ai_request_model",
        /// `input` or `output`.
        token_type: "gen_ai_token_type",
    }
}

label_struct! {
    /// `switchyard_tokens_total`.
    TokenLabels[4] {
        config: "config",
        /// The provider's name under `providers:`.
        provider: "provider",
        model: "model",
        /// `input`, `output`, `cached`, `reasoning`.
        kind: "type",
    }
}

label_struct! {
    /// `switchyard_cost_usd_total`, `switchyard_cost_unknown_total`.
    SpendLabels[2] {
        config: "config",
        virtual_key: "virtual_key",
    }
}

label_struct! {
    /// `switchyard_feedback_total`.
    FeedbackLabels[2] {
        config: "config",
        /// `-10` … `10`.
        value: "value",
    }
}

label_enum! {
    /// `switchyard_store_errors_total`: the request-store operation that failed.
    StoreOp[4] "op" {
        /// Writing a batch (each failed try).
        Write = "write",
        /// Connecting and migrating.
        Connect = "connect",
        /// Pruning by age or size.
        Prune = "prune",
        /// An analytics query.
        Read = "read",
    }
}

label_enum! {
    /// `switchyard_store_dropped_total`: why records never reached the store.
    StoreDrop[2] "reason" {
        /// The queue was full: the writer is behind (or the store down).
        QueueFull = "queue_full",
        /// Every retry of the batch failed.
        WriteFailed = "write_failed",
    }
}

label_struct! {
    /// `switchyard_upstream_connections`: open upstream connections by provider, protocol
    /// (`http/1.1`, `h2`) and state (`active`: carrying a request; `idle`: pooled).
    ConnLabels[3] {
        provider: "provider",
        protocol: "protocol",
        state: "state",
    }
}

label_struct! {
    /// `switchyard_upstream_connect_seconds`: new connections (TCP + TLS) by provider, protocol
    /// and trigger (`request`: a user request waited for it; `prewarm`).
    ConnectLabels[3] {
        provider: "provider",
        protocol: "protocol",
        trigger: "trigger",
    }
}
