//! `configs:` and `circuit_breaker:`: each config's target tree (strategies, conditions,
//! inherited settings, guardrails, cache), and the one-key routes.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::compiler::*;
use super::passthrough::PassthroughScope;
use crate::config::schema::*;
use crate::config::snapshot::*;

/// What a config's nodes may refer to.
pub(super) struct Scope<'s> {
    pub(super) virtual_keys: &'s HashMap<String, Arc<VirtualKey>>,
    /// The names under `virtual_keys:` (one that failed to compile is reported once, there).
    pub(super) declared: &'s std::collections::BTreeMap<String, VirtualKeySpec>,
    pub(super) passthrough: PassthroughScope<'s>,
    /// Breakers and cache stores are keyed under this name.
    pub(super) config_name: &'s str,
    /// `state:` is set (a Redis-backed cache may be asked for).
    pub(super) has_state: bool,
}

/// A `request_timeout` below this is read as milliseconds but warned about: Portkey's value is
/// in milliseconds, and a small number is usually meant as seconds.
const SHORT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

impl Compiler<'_> {
    /// `configs:`: each config's target tree, then its `cache:` (compiled by `crate::cache`).
    pub(super) fn configs(
        &mut self,
        file: &FileConfig,
        root_settings: &TargetSettings,
        virtual_keys: &HashMap<String, Arc<VirtualKey>>,
        passthrough: &Passthrough,
    ) -> HashMap<String, Arc<RouteConfig>> {
        let mut configs = HashMap::new();
        for (name, spec) in &file.configs {
            let scope = Scope {
                virtual_keys,
                declared: &file.virtual_keys,
                passthrough: PassthroughScope {
                    table: passthrough,
                    inline: false,
                },
                config_name: name,
                has_state: file.state.is_some(),
            };
            let path = format!("configs.{name}");
            if let Some(route) = self.route(spec, &path, name, root_settings, &scope) {
                configs.insert(name.clone(), Arc::new(route));
            }
        }
        configs
    }

    /// One config: its target tree, then its `cache:` (compiled by `crate::cache`). `name` is
    /// the config label; the breakers are keyed under `scope.config_name`.
    pub(super) fn route(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        name: &str,
        root_settings: &TargetSettings,
        scope: &Scope<'_>,
    ) -> Option<RouteConfig> {
        let mut root = self.node(spec, yaml_path, "config".into(), root_settings, scope)?;
        if let Some(c) = &spec.cache {
            let ctx = crate::cache::config::Context {
                virtual_keys: scope.virtual_keys,
                has_state: scope.has_state,
                config_name: scope.config_name,
                base_dir: self.base_dir,
            };
            root.settings.cache = self.cache(c, yaml_path, &ctx, &root);
        }
        Some(RouteConfig::new(name.to_string(), root))
    }

    pub(super) fn breaker(
        &mut self,
        path: &str,
        spec: Option<&BreakerSpec>,
        parent: &CircuitBreakerSettings,
    ) -> CircuitBreakerSettings {
        let Some(spec) = spec else {
            return parent.clone();
        };
        for (field, v) in [
            ("failure_rate", spec.failure_rate),
            ("slow_call_rate", spec.slow_call_rate),
        ] {
            if v.is_some_and(|v| !(0.0..=1.0).contains(&v) || v == 0.0) {
                self.error(format!("{path}.{field}"), "must be in (0, 1]");
            }
        }
        if spec.min_calls == Some(0) {
            self.error(format!("{path}.min_calls"), "must be at least 1");
        }
        if spec.half_open_probes == Some(0) {
            self.error(format!("{path}.half_open_probes"), "must be at least 1");
        }
        CircuitBreakerSettings {
            enabled: spec.enabled.unwrap_or(parent.enabled),
            window: spec.window_s.map(|d| d.0).unwrap_or(parent.window),
            min_calls: spec.min_calls.unwrap_or(parent.min_calls),
            failure_rate: spec.failure_rate.unwrap_or(parent.failure_rate),
            slow_call: spec.slow_call_ms.map(|d| d.0).or(parent.slow_call),
            slow_call_rate: spec.slow_call_rate.unwrap_or(parent.slow_call_rate),
            open_for: spec.open_s.map(|d| d.0).unwrap_or(parent.open_for),
            half_open_probes: spec.half_open_probes.unwrap_or(parent.half_open_probes),
        }
    }

    pub(super) fn status_codes(&mut self, path: &str, codes: &[i64]) -> Vec<u16> {
        let mut out = Vec::with_capacity(codes.len());
        for (i, c) in codes.iter().enumerate() {
            if (100..=599).contains(c) {
                out.push(*c as u16);
            } else {
                self.error(
                    format!("{path}[{i}]"),
                    format!("{c} is not an HTTP status code (100-599)"),
                );
            }
        }
        out
    }

    /// The settings of a node: its own where set, else its parent's.
    pub(super) fn settings(
        &mut self,
        spec: &NodeSpec,
        path: &str,
        parent: &TargetSettings,
    ) -> TargetSettings {
        let retry = match &spec.retry {
            Some(r) => RetrySettings {
                attempts: r.attempts,
                on_status_codes: match &r.on_status_codes {
                    Some(c) => self.status_codes(&format!("{path}.retry.on_status_codes"), c),
                    None => RetrySettings::default().on_status_codes,
                },
                use_retry_after: r.use_retry_after_header.unwrap_or(true),
            },
            None => parent.retry.clone(),
        };
        if spec.retry.as_ref().is_some_and(|r| r.attempts > 10) {
            self.error(format!("{path}.retry.attempts"), "at most 10");
        }
        let timeouts = match &spec.timeouts {
            Some(t) => PhaseTimeouts {
                connect: t.connect_ms.map(|d| d.0).or(parent.timeouts.connect),
                headers: parent.timeouts.headers,
                ttft: t.ttft_ms.map(|d| d.0).or(parent.timeouts.ttft),
                idle: t.idle_ms.map(|d| d.0).or(parent.timeouts.idle),
                total: t.total_ms.map(|d| d.0).or(parent.timeouts.total),
            },
            None => parent.timeouts.clone(),
        };
        let mut override_params = parent.override_params.clone();
        if let Some(own) = &spec.override_params {
            for (k, v) in own {
                override_params.insert(k.clone(), v.clone());
            }
        }
        if let Some(model) = override_params.get("model") {
            match model.as_str() {
                Some(m) => {
                    self.known_models.insert(m.to_string());
                }
                None => self.error(format!("{path}.override_params.model"), "must be a string"),
            }
        }
        // The lookup runs before routing: only the config's own `cache` applies (compiled with
        // the config, in `compile`).
        if spec.cache.is_some() && path.contains(".targets[") {
            self.error(
                format!("{path}.cache"),
                "cache is set on a config, not on a target (the lookup runs before routing)",
            );
        }
        let cache = None;
        let (input_guardrails, output_guardrails) = self.node_guardrails(spec, path, parent);
        if let Some(t) = spec.request_timeout.map(|d| d.0) {
            if t < SHORT_REQUEST_TIMEOUT {
                let ms = t.as_millis();
                self.warn(
                    format!("{path}.request_timeout"),
                    format!("{ms} ms is very short: request_timeout is in milliseconds (did you mean {ms} seconds, {}?)", ms * 1000),
                );
            }
        }
        TargetSettings {
            retry,
            request_timeout: spec.request_timeout.map(|d| d.0).or(parent.request_timeout),
            timeouts,
            override_params,
            circuit_breaker: self.breaker(
                &format!("{path}.circuit_breaker"),
                spec.circuit_breaker.as_ref(),
                &parent.circuit_breaker,
            ),
            cache,
            input_guardrails,
            output_guardrails,
        }
    }

    /// Validates a Portkey query: `{ "metadata.x": {"$eq": v}, "$or": [ ... ] }`.
    pub(super) fn query(&mut self, path: &str, query: &Value) {
        let Some(obj) = query.as_object() else {
            self.error(path, "a query must be a mapping");
            return;
        };
        for (key, value) in obj {
            let p = format!("{path}.{key}");
            if key == "$and" || key == "$or" {
                match value.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.query(&format!("{p}[{i}]"), item);
                        }
                    }
                    None => self.error(p, format!("{key} takes a list of queries")),
                }
                continue;
            }
            if !(key.starts_with("metadata.")
                || key.starts_with("params.")
                || key == "url.pathname")
            {
                self.error(
                    p,
                    "query keys are metadata.<key>, params.<key>, $and or $or",
                );
                continue;
            }
            let Some(ops) = value.as_object() else {
                continue; // a bare value means $eq
            };
            for (op, operand) in ops {
                if !QUERY_OPERATORS.contains(&op.as_str()) {
                    self.error(format!("{p}.{op}"), format!("unknown operator {op}"));
                } else if op == "$regex" {
                    match operand.as_str().map(regex::Regex::new) {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            self.error(format!("{p}.{op}"), format!("invalid regex: {e}"))
                        }
                        None => self.error(format!("{p}.{op}"), "must be a string"),
                    }
                } else if (op == "$in" || op == "$nin") && !operand.is_array() {
                    self.error(format!("{p}.{op}"), "must be a list");
                }
            }
        }
    }

    pub(super) fn node(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        option_path: String,
        parent: &TargetSettings,
        scope: &Scope<'_>,
    ) -> Option<Target> {
        let settings = self.settings(spec, yaml_path, parent);
        // Portkey: `weight: 0` drains a target (a loadbalance group never picks it).
        let weight = spec.weight.unwrap_or(1.0);
        if weight.is_nan() || weight < 0.0 || weight.is_infinite() {
            self.error(
                format!("{yaml_path}.weight"),
                "must be a number ≥ 0 (0 drains the target)",
            );
        }
        let kind = match (&spec.targets, self.leaf(spec, yaml_path, scope)?) {
            (Some(_), Some(_)) => {
                self.error(
                    yaml_path,
                    "a target has either virtual_key, provider or targets, not two of them",
                );
                return None;
            }
            (None, None) => {
                self.error(yaml_path, "a target needs virtual_key, provider or targets");
                return None;
            }
            (None, Some(virtual_key)) => {
                if spec.strategy.is_some() {
                    self.error(format!("{yaml_path}.strategy"), "a strategy needs targets");
                }
                TargetKind::Leaf { virtual_key }
            }
            (Some(children), None) => {
                self.group(spec, yaml_path, &option_path, children, &settings, scope)?
            }
        };
        let breaker_key = format!(
            "{}/{}",
            scope.config_name,
            spec.name.as_deref().unwrap_or(&option_path)
        );
        Some(Target {
            breaker_key,
            path: option_path,
            name: spec.name.clone(),
            weight,
            kind,
            settings,
        })
    }

    /// A leaf's virtual key: `virtual_key:` (configured) or `provider:` (passthrough);
    /// `Some(None)` when the node names neither, `None` after an error.
    fn leaf(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        scope: &Scope<'_>,
    ) -> Option<Option<Arc<VirtualKey>>> {
        if spec.provider.is_none() {
            for (field, set) in [
                ("api_key", spec.api_key.is_some()),
                ("custom_host", spec.custom_host.is_some()),
            ] {
                if set {
                    self.error(
                        format!("{yaml_path}.{field}"),
                        "only with provider (a passthrough target)",
                    );
                }
            }
        }
        match (&spec.virtual_key, &spec.provider) {
            (Some(_), Some(_)) => {
                self.error(
                    yaml_path,
                    "a target has either virtual_key or provider, not both",
                );
                None
            }
            (None, None) => Some(None),
            (None, Some(_)) => self
                .provider_leaf(spec, yaml_path, &scope.passthrough)
                .map(Some),
            (Some(vk), None) => match scope.virtual_keys.get(vk) {
                Some(k) => Some(Some(k.clone())),
                None => {
                    if !scope.declared.contains_key(vk) {
                        self.error(
                            format!("{yaml_path}.virtual_key"),
                            format!("unknown virtual key {vk:?}"),
                        );
                    }
                    None
                }
            },
        }
    }

    /// A group node: its strategy and every child compiled.
    fn group(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        option_path: &str,
        children: &[NodeSpec],
        settings: &TargetSettings,
        scope: &Scope<'_>,
    ) -> Option<TargetKind> {
        if children.is_empty() {
            self.error(format!("{yaml_path}.targets"), "must not be empty");
            return None;
        }
        let strategy = self.strategy(spec, yaml_path, children);
        let mut targets = Vec::with_capacity(children.len());
        for (i, child) in children.iter().enumerate() {
            if let Some(t) = self.node(
                child,
                &format!("{yaml_path}.targets[{i}]"),
                format!("{option_path}.targets[{i}]"),
                settings,
                scope,
            ) {
                targets.push(t);
            }
        }
        if targets.len() != children.len() {
            return None;
        }
        if strategy.mode == StrategyMode::LoadBalance && targets.iter().all(|t| t.weight == 0.0) {
            self.error(
                format!("{yaml_path}.targets"),
                "every target is drained (weight 0): a loadbalance group needs one with a weight above 0",
            );
            return None;
        }
        Some(TargetKind::Group { strategy, targets })
    }

    pub(super) fn strategy(
        &mut self,
        spec: &NodeSpec,
        yaml_path: &str,
        children: &[NodeSpec],
    ) -> Strategy {
        let s = spec.strategy.as_ref();
        let sp = format!("{yaml_path}.strategy");
        let mode = match s.map(|s| s.mode) {
            None | Some(ModeSpec::Single) => StrategyMode::Single,
            Some(ModeSpec::Fallback) => StrategyMode::Fallback,
            Some(ModeSpec::Loadbalance) => StrategyMode::LoadBalance,
            Some(ModeSpec::Conditional) => StrategyMode::Conditional,
        };
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, c) in children.iter().enumerate() {
            if let Some(n) = &c.name {
                if names.insert(n.as_str(), i).is_some() {
                    self.error(
                        format!("{yaml_path}.targets[{i}].name"),
                        format!("duplicate target name {n:?}"),
                    );
                }
            }
        }
        let on_status_codes = s
            .and_then(|s| s.on_status_codes.as_ref())
            .map(|c| self.status_codes(&format!("{sp}.on_status_codes"), c));
        if on_status_codes.is_some() && mode != StrategyMode::Fallback {
            self.error(format!("{sp}.on_status_codes"), "only for mode fallback");
        }
        let mut conditions = Vec::new();
        let mut default_target = None;
        if mode == StrategyMode::Conditional {
            let specs = s.and_then(|s| s.conditions.as_ref());
            if specs.is_none_or(|c| c.is_empty()) {
                self.error(
                    format!("{sp}.conditions"),
                    "mode conditional needs conditions",
                );
            }
            for (i, c) in specs.into_iter().flatten().enumerate() {
                self.query(&format!("{sp}.conditions[{i}].query"), &c.query);
                match names.get(c.then.as_str()) {
                    Some(&idx) => conditions.push(Condition {
                        query: c.query.clone(),
                        then: idx,
                    }),
                    None => self.error(
                        format!("{sp}.conditions[{i}].then"),
                        format!("no target named {:?}", c.then),
                    ),
                }
            }
            if let Some(d) = s.and_then(|s| s.default.as_ref()) {
                match names.get(d.as_str()) {
                    Some(&idx) => default_target = Some(idx),
                    None => self.error(format!("{sp}.default"), format!("no target named {d:?}")),
                }
            }
        } else {
            if s.is_some_and(|s| s.conditions.is_some()) {
                self.error(format!("{sp}.conditions"), "only for mode conditional");
            }
            if s.is_some_and(|s| s.default.is_some()) {
                self.error(format!("{sp}.default"), "only for mode conditional");
            }
        }
        let algorithm = match s.and_then(|s| s.algorithm) {
            Some(AlgorithmSpec::LeastLatency) => LbAlgorithm::LeastLatency,
            _ => LbAlgorithm::WeightedRandom,
        };
        if s.and_then(|s| s.algorithm).is_some() && mode != StrategyMode::LoadBalance {
            self.error(format!("{sp}.algorithm"), "only for mode loadbalance");
        }
        let hedge_after = spec.hedge.as_ref().map(|h| h.after_ms.0);
        if hedge_after.is_some() && mode != StrategyMode::Fallback {
            self.error(
                format!("{yaml_path}.hedge"),
                "hedging needs strategy mode fallback",
            );
        }
        Strategy {
            mode,
            on_status_codes,
            algorithm,
            conditions,
            default_target,
            hedge_after,
        }
    }
}

/// One single-target route per virtual key, for requests that name no config.
pub(super) fn direct_routes(
    virtual_keys: &HashMap<String, Arc<VirtualKey>>,
    root_settings: &TargetSettings,
) -> HashMap<String, Arc<RouteConfig>> {
    virtual_keys
        .iter()
        .map(|(name, key)| {
            // Shown on the console and as the `target` label: the key's label.
            let breaker_key = format!("direct/{}", key.label);
            let root = Target::leaf(breaker_key, key.label.clone(), key.clone(), root_settings);
            (
                name.clone(),
                Arc::new(RouteConfig::new("direct".into(), root)),
            )
        })
        .collect()
}
