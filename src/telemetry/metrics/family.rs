//! Typed metric families: a prometheus `*Vec` whose label set is a type, so the compiler checks
//! label names, their number and their order at every call site. A label set's names are
//! declared once, beside its struct ([`LabelSet::NAMES`]), and registered from there; call sites
//! build the struct from borrowed values (`&str` fields, or small enums with a fixed label), so
//! looking a series up allocates nothing more than the positional API did.

use std::marker::PhantomData;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The label set of one metric family: `N` label names and how to read their values.
///
/// It is implemented on the label struct with `'static` values (`RequestLabels<'static>`),
/// which names the family's type; [`LabelSet::Of`] is the same struct borrowing for any `'a`,
/// which is what call sites build. Enums without borrowed data are their own `Of`.
pub trait LabelSet<const N: usize> {
    /// The label names, in registration (and exposition) order.
    const NAMES: [&'static str; N];
    /// The label struct borrowing its values for `'a`.
    type Of<'a>;
    /// The values of `labels`, in the order of [`LabelSet::NAMES`].
    fn values<'a>(labels: &Self::Of<'a>) -> [&'a str; N];
}

/// A registered family `V` (`IntCounterVec`, `HistogramVec`, …) labelled by `L`. Cloning shares
/// the series, as cloning the prometheus vec does.
pub struct Family<V, L, const N: usize> {
    vec: V,
    labels: PhantomData<fn() -> L>,
}

impl<V: Clone, L, const N: usize> Clone for Family<V, L, N> {
    fn clone(&self) -> Self {
        Family {
            vec: self.vec.clone(),
            labels: PhantomData,
        }
    }
}

impl<M: MetricVecBuilder, L: LabelSet<N>, const N: usize> Family<MetricVec<M>, L, N> {
    /// The series of `labels`, created (at zero) on first use.
    pub fn with(&self, labels: &L::Of<'_>) -> M::M {
        self.vec.with_label_values(&L::values(labels))
    }

    /// Drops the series of `labels`; `false` when there was none.
    pub fn remove(&self, labels: &L::Of<'_>) -> bool {
        self.vec.remove_label_values(&L::values(labels)).is_ok()
    }

    /// Drops every series.
    pub fn reset(&self) {
        self.vec.reset();
    }

    /// The family's current series, for readers inside the process (the console's sampler).
    pub fn collect(&self) -> Vec<MetricFamily> {
        self.vec.collect()
    }

    /// Registers `vec` (built with [`LabelSet::NAMES`]) in `registry`.
    fn register(registry: &Registry, vec: MetricVec<M>) -> Result<Self, prometheus::Error>
    where
        M: 'static,
    {
        registry.register(Box::new(vec.clone()))?;
        Ok(Family {
            vec,
            labels: PhantomData,
        })
    }
}

impl<L: LabelSet<N>, const N: usize> Family<IntCounterVec, L, N> {
    /// A registered integer counter family.
    pub fn counter(registry: &Registry, name: &str, help: &str) -> Result<Self, prometheus::Error> {
        Self::register(
            registry,
            IntCounterVec::new(Opts::new(name, help), &L::NAMES)?,
        )
    }
}

impl<L: LabelSet<N>, const N: usize> Family<CounterVec, L, N> {
    /// A registered floating-point counter family.
    pub fn float_counter(
        registry: &Registry,
        name: &str,
        help: &str,
    ) -> Result<Self, prometheus::Error> {
        Self::register(registry, CounterVec::new(Opts::new(name, help), &L::NAMES)?)
    }
}

impl<L: LabelSet<N>, const N: usize> Family<IntGaugeVec, L, N> {
    /// A registered integer gauge family.
    pub fn gauge(registry: &Registry, name: &str, help: &str) -> Result<Self, prometheus::Error> {
        Self::register(
            registry,
            IntGaugeVec::new(Opts::new(name, help), &L::NAMES)?,
        )
    }
}

impl<L: LabelSet<N>, const N: usize> Family<GaugeVec, L, N> {
    /// A registered floating-point gauge family.
    pub fn float_gauge(
        registry: &Registry,
        name: &str,
        help: &str,
    ) -> Result<Self, prometheus::Error> {
        Self::register(registry, GaugeVec::new(Opts::new(name, help), &L::NAMES)?)
    }
}

impl<L: LabelSet<N>, const N: usize> Family<HistogramVec, L, N> {
    /// A registered histogram family with these bucket bounds.
    pub fn histogram(
        registry: &Registry,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Self, prometheus::Error> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        Self::register(registry, HistogramVec::new(opts, &L::NAMES)?)
    }
}
