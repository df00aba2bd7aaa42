//! The kinds the whole gateway names: provider kinds (what `providers[].kind` says) and limit
//! kinds (what a virtual key's limits count).

/// A provider kind: the `kind` of a `providers:` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    AzureOpenAi,
    Anthropic,
    Gemini,
    OpenAiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The base URL when a provider sets none; `None`: `base_url` is required for this kind.
    pub const fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => None,
        }
    }

    /// Portkey's provider id for this kind (`x-portkey-provider` in responses): `google` for
    /// Gemini; an OpenAI-compatible server is `openai`-shaped, so `openai-compatible` stays.
    pub fn portkey_id(self) -> &'static str {
        match self {
            ProviderKind::Gemini => "google",
            other => other.as_str(),
        }
    }

    /// The header the credential goes in when a provider sets no `auth_header`.
    pub fn default_auth_header(self) -> &'static str {
        match self {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => "authorization",
            ProviderKind::AzureOpenAi => "api-key",
            ProviderKind::Anthropic => "x-api-key",
            ProviderKind::Gemini => "x-goog-api-key",
        }
    }
}

/// The limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rpm,
    Tpm,
    Concurrent,
    UsdPerDay,
    UsdPerMonth,
}

impl LimitKind {
    pub const ALL: [LimitKind; 5] = [
        LimitKind::Rpm,
        LimitKind::Tpm,
        LimitKind::Concurrent,
        LimitKind::UsdPerDay,
        LimitKind::UsdPerMonth,
    ];

    /// The config field, also the `limit` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Tpm => "tpm",
            LimitKind::Concurrent => "concurrent",
            LimitKind::UsdPerDay => "usd_per_day",
            LimitKind::UsdPerMonth => "usd_per_month",
        }
    }

    /// What the limit counts, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::Rpm => "requests per minute (rpm)",
            LimitKind::Tpm => "tokens per minute (tpm)",
            LimitKind::Concurrent => "concurrent requests",
            LimitKind::UsdPerDay => "USD per day (usd_per_day)",
            LimitKind::UsdPerMonth => "USD per month (usd_per_month)",
        }
    }

    pub fn is_budget(self) -> bool {
        matches!(self, LimitKind::UsdPerDay | LimitKind::UsdPerMonth)
    }
}

/// One of Portkey's provider ids that provider passthrough serves: its kind and standard base
/// URL (`None`: reached only through a custom host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortkeyProvider {
    pub id: &'static str,
    pub kind: ProviderKind,
    pub base_url: Option<&'static str>,
}

/// Portkey's provider ids passthrough serves (`x-portkey-provider`, a target's `provider`).
pub const PORTKEY_PROVIDERS: [PortkeyProvider; 13] = [
    PortkeyProvider {
        id: "openai",
        kind: ProviderKind::OpenAi,
        base_url: ProviderKind::OpenAi.default_base_url(),
    },
    PortkeyProvider {
        id: "anthropic",
        kind: ProviderKind::Anthropic,
        base_url: ProviderKind::Anthropic.default_base_url(),
    },
    PortkeyProvider {
        id: "google",
        kind: ProviderKind::Gemini,
        base_url: ProviderKind::Gemini.default_base_url(),
    },
    PortkeyProvider {
        id: "groq",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.groq.com/openai/v1"),
    },
    PortkeyProvider {
        id: "mistral-ai",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.mistral.ai/v1"),
    },
    PortkeyProvider {
        id: "together-ai",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.together.xyz/v1"),
    },
    PortkeyProvider {
        id: "deepseek",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.deepseek.com/v1"),
    },
    PortkeyProvider {
        id: "fireworks-ai",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.fireworks.ai/inference/v1"),
    },
    PortkeyProvider {
        id: "openrouter",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://openrouter.ai/api/v1"),
    },
    PortkeyProvider {
        id: "perplexity-ai",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.perplexity.ai"),
    },
    PortkeyProvider {
        id: "x-ai",
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some("https://api.x.ai/v1"),
    },
    PortkeyProvider {
        id: "azure-openai",
        kind: ProviderKind::AzureOpenAi,
        base_url: None,
    },
    PortkeyProvider {
        id: "openai-compatible",
        kind: ProviderKind::OpenAiCompatible,
        base_url: None,
    },
];

/// The Portkey provider `id`, if passthrough serves it.
pub fn portkey_provider(id: &str) -> Option<&'static PortkeyProvider> {
    PORTKEY_PROVIDERS.iter().find(|p| p.id == id)
}

/// Every Portkey provider id passthrough serves, comma-separated (for error messages).
pub fn portkey_provider_ids() -> String {
    PORTKEY_PROVIDERS
        .iter()
        .map(|p| p.id)
        .collect::<Vec<_>>()
        .join(", ")
}
