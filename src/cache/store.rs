//! The in-memory side of one config's cache: stored responses in a `moka` cache bounded by
//! their bytes (`cache.max_bytes`) with a time-to-live per entry (`cache.max_age` when it was
//! stored), and the semantic index — per partition, a bounded list of unit vectors pointing at
//! stored responses, searched by cosine similarity.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::key::Digest32;

/// Vectors kept per semantic partition (the oldest go first).
pub const MAX_VECTORS_PER_PARTITION: usize = 4096;
/// Semantic partitions kept per config (least recently used go first).
pub const MAX_PARTITIONS: u64 = 1024;

/// A response as it was sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    /// An SSE stream (`text/event-stream`), else a JSON body.
    pub stream: bool,
    pub body: Bytes,
    /// How long it is served from when it was stored.
    pub ttl: Duration,
}

const ENCODING_VERSION: u8 = 1;

impl Entry {
    /// The wire form kept in Redis: version, status, stream flag, body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(4 + self.body.len());
        out.put_u8(ENCODING_VERSION);
        out.put_u16(self.status);
        out.put_u8(u8::from(self.stream));
        out.extend_from_slice(&self.body);
        out.to_vec()
    }

    /// Reads [`Entry::encode`]'s form; `None` for anything else.
    pub fn decode(raw: &[u8], ttl: Duration) -> Option<Entry> {
        match raw {
            [ENCODING_VERSION, s0, s1, stream @ (0 | 1), body @ ..] => Some(Entry {
                status: u16::from_be_bytes([*s0, *s1]),
                stream: *stream == 1,
                body: Bytes::copy_from_slice(body),
                ttl,
            }),
            _ => None,
        }
    }
}

/// Each entry lives for its own `ttl` (a re-store restarts it).
struct PerEntryTtl;

impl moka::Expiry<Digest32, Arc<Entry>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Digest32,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Digest32,
        value: &Arc<Entry>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// One stored vector.
struct Vector {
    unit: Box<[f32]>,
    key: Digest32,
    expires: Instant,
}

/// The vectors of one partition, oldest first.
#[derive(Default)]
struct Partition {
    vectors: VecDeque<Vector>,
}

/// The best stored vector for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    pub key: Digest32,
    pub similarity: f32,
}

/// One config's stores.
pub struct ConfigStore {
    /// The bound it was built with (a reload that changes it gets a new store).
    pub max_bytes: u64,
    exact: moka::sync::Cache<Digest32, Arc<Entry>>,
    semantic: moka::sync::Cache<Digest32, Arc<Mutex<Partition>>>,
}

impl ConfigStore {
    pub fn new(max_bytes: u64) -> ConfigStore {
        ConfigStore {
            max_bytes,
            exact: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_k: &Digest32, v: &Arc<Entry>| {
                    u32::try_from(v.body.len() + 64).unwrap_or(u32::MAX)
                })
                .expire_after(PerEntryTtl)
                .build(),
            semantic: moka::sync::Cache::builder()
                .max_capacity(MAX_PARTITIONS)
                .build(),
        }
    }

    /// Largest response stored (an eighth of the store).
    pub fn max_entry_bytes(&self) -> usize {
        usize::try_from(self.max_bytes / 8).unwrap_or(usize::MAX)
    }

    pub fn get(&self, key: &Digest32) -> Option<Arc<Entry>> {
        self.exact.get(key)
    }

    pub fn insert(&self, key: Digest32, entry: Arc<Entry>) {
        if entry.body.len() <= self.max_entry_bytes() {
            self.exact.insert(key, entry);
        }
    }

    /// Adds a unit vector for `key` to `partition`.
    pub fn insert_vector(
        &self,
        partition: Digest32,
        unit: Box<[f32]>,
        key: Digest32,
        ttl: Duration,
    ) {
        let p = self
            .semantic
            .get_with(partition, || Arc::new(Mutex::new(Partition::default())));
        let now = Instant::now();
        let mut p = p.lock().unwrap_or_else(PoisonError::into_inner);
        while p.vectors.front().is_some_and(|v| v.expires <= now) {
            p.vectors.pop_front();
        }
        // A re-stored prompt replaces its vector.
        p.vectors.retain(|v| v.key != key);
        if p.vectors.len() >= MAX_VECTORS_PER_PARTITION {
            p.vectors.pop_front();
        }
        p.vectors.push_back(Vector {
            unit,
            key,
            expires: now + ttl,
        });
    }

    /// The most similar live vector of `partition` (cosine of unit vectors: their dot product).
    pub fn nearest(&self, partition: &Digest32, unit: &[f32]) -> Option<Nearest> {
        let p = self.semantic.get(partition)?;
        let now = Instant::now();
        let p = p.lock().unwrap_or_else(PoisonError::into_inner);
        let mut best: Option<Nearest> = None;
        for v in p.vectors.iter().filter(|v| v.expires > now) {
            if v.unit.len() != unit.len() {
                continue;
            }
            let similarity = dot(&v.unit, unit);
            if best.is_none_or(|b| similarity > b.similarity) {
                best = Some(Nearest {
                    key: v.key,
                    similarity,
                });
            }
        }
        best
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v` scaled to length 1; `None` for a zero or non-finite vector.
pub fn normalized(mut v: Vec<f32>) -> Option<Box<[f32]>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return None;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    Some(v.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &str, ttl: Duration) -> Arc<Entry> {
        Arc::new(Entry {
            status: 200,
            stream: false,
            body: Bytes::from(body.to_string()),
            ttl,
        })
    }

    #[test]
    fn entries_round_trip_through_their_wire_form() {
        let e = Entry {
            status: 201,
            stream: true,
            body: Bytes::from_static(b"data: x\n\n"),
            ttl: Duration::from_secs(5),
        };
        assert_eq!(Entry::decode(&e.encode(), e.ttl), Some(e));
        assert_eq!(Entry::decode(b"junk", Duration::ZERO), None);
    }

    #[test]
    fn entries_expire_after_their_own_ttl() {
        let s = ConfigStore::new(1 << 20);
        s.insert([1; 32], entry("short", Duration::from_millis(30)));
        s.insert([2; 32], entry("long", Duration::from_secs(60)));
        assert!(s.get(&[1; 32]).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&[1; 32]).is_none());
        assert!(s.get(&[2; 32]).is_some());
    }

    #[test]
    fn the_store_is_bounded_by_bytes() {
        let s = ConfigStore::new(64 * 1024);
        let big = "x".repeat(4000);
        for i in 0..200u8 {
            s.insert([i; 32], entry(&big, Duration::from_secs(60)));
        }
        s.exact.run_pending_tasks();
        assert!(s.exact.weighted_size() <= 64 * 1024);
        // Larger than an eighth of the store: not kept.
        s.insert([255; 32], entry(&"y".repeat(9000), Duration::from_secs(60)));
        assert!(s.get(&[255; 32]).is_none());
    }

    #[test]
    fn the_nearest_vector_wins_and_expired_ones_are_ignored() {
        let s = ConfigStore::new(1 << 20);
        let p = [9; 32];
        let a = normalized(vec![1.0, 0.0]).unwrap();
        let b = normalized(vec![0.6, 0.8]).unwrap();
        s.insert_vector(p, a, [1; 32], Duration::from_secs(60));
        s.insert_vector(p, b, [2; 32], Duration::from_secs(60));
        let q = normalized(vec![0.7, 0.7]).unwrap();
        let n = s.nearest(&p, &q).unwrap();
        assert_eq!(n.key, [2; 32]);
        assert!((n.similarity - (0.6 + 0.8) / 2f32.sqrt()).abs() < 1e-6);
        assert!(s.nearest(&[8; 32], &q).is_none(), "other partition");
        s.insert_vector(
            p,
            normalized(vec![0.7, 0.7]).unwrap(),
            [3; 32],
            Duration::from_millis(20),
        );
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.nearest(&p, &q).unwrap().key, [2; 32]);
        assert!(normalized(vec![0.0, 0.0]).is_none());
    }
}
