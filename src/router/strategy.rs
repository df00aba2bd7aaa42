//! Strategy execution over the compiled target tree: which leaves run, in which order.
//!
//! This is the backbone's version: `single` runs its first target, `fallback` runs its leaves in
//! order, `loadbalance` picks one child by weight. Conditional routing, per-group fallback
//! codes, retries, breakers and hedging build on this in the resilience issue.

use crate::config::{StrategyMode, Target, TargetKind};

/// The leaves of `root` in the order they are attempted.
pub fn attempt_order(root: &Target) -> Vec<&Target> {
    let mut out = Vec::with_capacity(2);
    push_leaves(root, &mut out);
    out
}

fn push_leaves<'a>(node: &'a Target, out: &mut Vec<&'a Target>) {
    match &node.kind {
        TargetKind::Leaf { .. } => out.push(node),
        TargetKind::Group { strategy, targets } => match strategy.mode {
            StrategyMode::Fallback => targets.iter().for_each(|t| push_leaves(t, out)),
            StrategyMode::LoadBalance => {
                if let Some(t) = pick_weighted(targets) {
                    push_leaves(t, out)
                }
            }
            StrategyMode::Conditional => {
                let chosen = strategy.default_target.and_then(|i| targets.get(i));
                if let Some(t) = chosen.or(targets.first()) {
                    push_leaves(t, out)
                }
            }
            StrategyMode::Single => {
                if let Some(t) = targets.first() {
                    push_leaves(t, out)
                }
            }
        },
    }
}

fn pick_weighted(targets: &[Target]) -> Option<&Target> {
    let total: f64 = targets.iter().map(|t| t.weight).sum();
    if total.is_nan() || total <= 0.0 {
        return targets.first();
    }
    let mut point = rand::random::<f64>() * total;
    for t in targets {
        if point < t.weight {
            return Some(t);
        }
        point -= t.weight;
    }
    targets.last()
}

/// Whether an upstream status moves on to the next target, by Portkey's rule: any non-2xx, or
/// only the listed codes when the root strategy narrows it.
pub fn falls_back_on_status(root: &Target, status: u16) -> bool {
    if (200..300).contains(&status) {
        return false;
    }
    match &root.kind {
        TargetKind::Group { strategy, .. } => match &strategy.on_status_codes {
            Some(codes) => codes.contains(&status),
            None => true,
        },
        TargetKind::Leaf { .. } => true,
    }
}
