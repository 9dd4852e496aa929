//! Ring lookups against their floor (the SHA-1 of the key) and the `hashring`
//! crate (issue 3, "Benchmark").
//!
//! One setup for every function: 100 nodes × 160 vnodes (16,000 points) and
//! 1,000,000 seeded pseudo-random 20-byte keys, walked in order, one key per
//! iteration, so that every lookup lands somewhere new on the ring as real
//! traffic does. Run: `cargo bench --bench ring`; figures and ratios are in
//! verification/REPORT.md, section "Ring".
//!
//! On Linux the clock is the benchmark thread's CPU time: on a machine shared
//! with other jobs, wall time counts the slices in which they ran instead, and
//! the ratios this benchmark exists for drift with the load.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hash::{BuildHasher, Hash, Hasher};
use std::hint::black_box;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use haft::ring::key_position;
use hashring::HashRing;
use sha1::{Digest, Sha1};

const NODES: usize = 100;
const VNODES: u32 = 160;
const KEYS: usize = 1_000_000;

/// A `hashring` point: node and vnode index, hashed through std's `Hash`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct VirtualNode {
    node: u32,
    vnode: u32,
}

/// SHA-1 behind std's `Hasher`, so that `hashring` pays for the same hash as
/// haft (std's `Hash` for a byte array also feeds a length prefix).
#[derive(Clone, Default)]
struct Sha1Hasher(Sha1);

impl Hasher for Sha1Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut leading = [0u8; 8];
        leading.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(leading)
    }
}

#[derive(Clone, Default)]
struct BuildSha1;

impl BuildHasher for BuildSha1 {
    type Hasher = Sha1Hasher;

    fn build_hasher(&self) -> Sha1Hasher {
        Sha1Hasher::default()
    }
}

fn virtual_nodes() -> Vec<VirtualNode> {
    (0..NODES as u32)
        .flat_map(|node| (0..VNODES).map(move |vnode| VirtualNode { node, vnode }))
        .collect()
}

/// Times `lookup` once per key, cycling through the keys.
fn per_key<K, T, M: Measurement>(
    group: &mut BenchmarkGroup<'_, M>,
    name: &str,
    keys: &[K],
    mut lookup: impl FnMut(&K) -> T,
) {
    group.bench_function(name, |bencher| {
        let mut next = 0usize;
        bencher.iter(|| {
            let key = &keys[next];
            next += 1;
            if next == keys.len() {
                next = 0;
            }
            lookup(black_box(key))
        })
    });
}

fn lookups<M: Measurement>(c: &mut Criterion<M>) {
    let keys = support::sample_keys(KEYS, 0x5eed);
    let ring = support::ring_of(NODES, VNODES);
    let mut siphash_ring: HashRing<VirtualNode> = HashRing::new();
    siphash_ring.batch_add(virtual_nodes());
    let mut sha1_ring: HashRing<VirtualNode, BuildSha1> = HashRing::with_hasher(BuildSha1);
    sha1_ring.batch_add(virtual_nodes());

    let mut group = c.benchmark_group("ring");
    per_key(&mut group, "sha1_of_key_floor", &keys, |key| {
        key_position(key)
    });
    // The same hash through the sha1 crate's `Digest` interface, for reference:
    // `key_position` pads short keys into one block itself (see its docs).
    per_key(&mut group, "sha1_digest_api", &keys, |key| {
        Sha1::digest(key)[0]
    });
    per_key(&mut group, "haft_owner", &keys, |key| {
        ring.owner(key).as_str().len()
    });
    let positions: Vec<[u8; 8]> = keys
        .iter()
        .map(|key| key_position(key).to_be_bytes())
        .collect();
    // The lookup alone, from a precomputed position: what `owner` adds to the floor.
    per_key(
        &mut group,
        "haft_owner_at_position",
        &positions,
        |position| ring.owner_index_at(u64::from_be_bytes(*position)),
    );
    per_key(
        &mut group,
        "haft_preference_list_3_at_position",
        &positions,
        |position| {
            ring.preference_list_at(u64::from_be_bytes(*position), 3)
                .len()
        },
    );
    per_key(&mut group, "haft_preference_list_3", &keys, |key| {
        ring.preference_list(key, 3).len()
    });
    per_key(&mut group, "hashring_get_siphash", &keys, |key| {
        siphash_ring.get(key).copied()
    });
    per_key(&mut group, "hashring_get_sha1", &keys, |key| {
        sha1_ring.get(key).copied()
    });
    // hashring returns the owner and the next `replicas` points (vnodes, not
    // distinct nodes), so 2 replicas give the 3 entries haft's list of 3 has.
    per_key(
        &mut group,
        "hashring_get_with_replicas_2_sha1",
        &keys,
        |key| sha1_ring.get_with_replicas(key, 2).map(|list| list.len()),
    );
    group.finish();
}

#[cfg(target_os = "linux")]
mod cpu_time {
    use std::time::Duration;

    use criterion::measurement::{Measurement, ValueFormatter, WallTime};
    use rustix::time::{ClockId, clock_gettime};

    /// The CPU time of the calling thread, formatted like wall time.
    pub struct ThreadCpuTime;

    fn now() -> Duration {
        let time = clock_gettime(ClockId::ThreadCPUTime);
        // CPU time since the thread started is never negative.
        Duration::new(
            time.tv_sec.unsigned_abs(),
            time.tv_nsec.unsigned_abs() as u32,
        )
    }

    impl Measurement for ThreadCpuTime {
        type Intermediate = Duration;
        type Value = Duration;

        fn start(&self) -> Duration {
            now()
        }
        fn end(&self, start: Duration) -> Duration {
            now().saturating_sub(start)
        }
        fn add(&self, a: &Duration, b: &Duration) -> Duration {
            *a + *b
        }
        fn zero(&self) -> Duration {
            Duration::ZERO
        }
        fn to_f64(&self, value: &Duration) -> f64 {
            value.as_nanos() as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            // Both measure durations in nanoseconds, so wall time's formatter fits.
            static WALL_TIME: WallTime = WallTime;
            WALL_TIME.formatter()
        }
    }
}

#[cfg(target_os = "linux")]
criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(cpu_time::ThreadCpuTime);
    targets = lookups
}
#[cfg(not(target_os = "linux"))]
criterion_group!(benches, lookups);
criterion_main!(benches);
