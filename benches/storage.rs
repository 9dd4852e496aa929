//! The storage log against its floor, the disk's own sync (issue 11, item 3).
//!
//! In one run, on one disk:
//! - `fsync`: a 64-byte write to a file and `fdatasync`, the floor;
//! - `durable_append`: one 64-byte record appended to a [`FileStorage`] and
//!   synced (one frame, one `fdatasync`);
//! - `group_commit/N`: N threads each submitting one 64-byte record through
//!   a [`GroupCommit`] over a [`FileStorage`] and waiting until its effect is
//!   released (the record is durable), over and over; one iteration is one
//!   commit, so the throughput is commits per second across the N threads;
//! - `group_commit_memory/64`: the same over a [`MemoryStorage`], the
//!   barrier's own cost without a disk.
//!
//! The log lives in `$HAFT_BENCH_DIR` if set, else in the system's temp
//! directory: point it at the disk to measure. Run:
//! `cargo bench --bench storage`; figures are in verification/REPORT.md,
//! section "Storage". Each group-commit level also prints how many records
//! one sync covered.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haft::storage::{FileStorage, GroupCommit, LogOptions, MemoryStorage, Storage};

const RECORD: [u8; 64] = [7; 64];

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("HAFT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("haft-bench-storage")
        .tempdir_in(base)
        .expect("the bench directory is writable")
}

fn recovered_log(dir: &tempfile::TempDir) -> FileStorage {
    let mut log = FileStorage::new(dir.path(), LogOptions::default());
    log.recover().expect("a fresh log recovers");
    log
}

fn fsync(c: &mut Criterion) {
    let dir = bench_dir();
    let mut file = File::create(dir.path().join("floor")).expect("create the floor file");
    c.bench_function("storage/fsync", |b| {
        b.iter(|| {
            file.write_all(&RECORD).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });
}

fn durable_append(c: &mut Criterion) {
    let dir = bench_dir();
    let mut log = recovered_log(&dir);
    c.bench_function("storage/durable_append", |b| {
        b.iter(|| {
            log.append(&RECORD).expect("append");
            black_box(log.sync().expect("sync"));
        })
    });
}

/// Runs `iters` commits spread over `threads` submitters through `group`;
/// returns the wall time from when all submitters are ready.
fn commits<S: Storage>(
    group: &Arc<GroupCommit<S, mpsc::Sender<()>>>,
    threads: u64,
    iters: u64,
) -> Duration {
    let ready = Arc::new(Barrier::new(threads as usize + 1));
    let submitters: Vec<_> = (0..threads)
        .map(|index| {
            let group = Arc::clone(group);
            let ready = Arc::clone(&ready);
            // Spread the remainder over the first threads.
            let share = iters / threads + u64::from(index < iters % threads);
            thread::spawn(move || {
                let (released, wait) = mpsc::channel();
                ready.wait();
                for _ in 0..share {
                    group
                        .submit(vec![RECORD.to_vec()], vec![released.clone()])
                        .expect("submit");
                    wait.recv().expect("the effect is released");
                }
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    for submitter in submitters {
        submitter.join().expect("a submitter panicked");
    }
    started.elapsed()
}

fn release(effects: Vec<mpsc::Sender<()>>) {
    for effect in effects {
        let _ = effect.send(());
    }
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage/group_commit");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 16, 64] {
        let dir = bench_dir();
        let barrier = Arc::new(GroupCommit::start(recovered_log(&dir), release));
        let level = Instant::now();
        group.bench_function(threads.to_string(), |b| {
            b.iter_custom(|iters| commits(&barrier, threads, iters))
        });
        // Warm-up included: how the disk behaved while this level ran.
        let elapsed = level.elapsed().as_secs_f64();
        let stats = barrier.stats();
        eprintln!(
            "group_commit/{threads}: {} records in {} syncs over {elapsed:.1} s: \
             {:.1} records per sync, a sync every {:.2} ms",
            stats.records_submitted,
            stats.syncs,
            stats.records_submitted as f64 / stats.syncs.max(1) as f64,
            elapsed * 1e3 / stats.syncs.max(1) as f64
        );
    }
    group.finish();

    let mut memory = c.benchmark_group("storage/group_commit_memory");
    memory.throughput(Throughput::Elements(1));
    let mut storage = MemoryStorage::new();
    storage.recover().expect("memory recovers");
    let barrier = Arc::new(GroupCommit::start(storage, release));
    memory.bench_function("64", |b| {
        b.iter_custom(|iters| {
            let elapsed = commits(&barrier, 64, iters);
            // Lets the memory storage drop the records (outside the timing).
            barrier.checkpoint(Vec::new()).expect("checkpoint");
            elapsed
        })
    });
    memory.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    targets = fsync, durable_append, group_commit
}
criterion_main!(benches);
