//! Hashing a generated 100,000-file context cold (empty stat cache), then again unchanged.
//!
//! `cargo bench -p kiln-cache --bench stat_cache` (`KILN_BENCH_FILES=N` for another size).
//! The files are made, then left older than the racy window, as a context is between edits;
//! the cold pass reads every file and records it, the warm pass only stats. Prints both
//! times and the ratio.

// Tests and benchmarks read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln_cache::{Cache, DEFAULT_RACY_WINDOW};
use kiln_fileop::ContentHasher;

fn main() {
    let files: usize = std::env::var("KILN_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = kiln_oci::Store::open(&dir.path().join("root")).expect("store");
    let ctx = dir.path().join("context");
    let started = Instant::now();
    let mut paths: Vec<PathBuf> = Vec::with_capacity(files);
    let mut bytes = 0u64;
    for i in 0..files {
        let sub = ctx.join(format!("d{:03}", i % 1000));
        if i < 1000 {
            fs::create_dir_all(&sub).expect("create dir");
        }
        let p = sub.join(format!("f{i}.txt"));
        // 100 B to ~8 KiB, like a source tree.
        let len = 100 + (i * 7919) % 8000;
        let content: Vec<u8> = format!("file {i} ").bytes().cycle().take(len).collect();
        bytes += len as u64;
        fs::write(&p, content).expect("write file");
        paths.push(p);
    }
    println!(
        "generated {files} files, {} MiB, in {:.2?}",
        bytes / (1 << 20),
        started.elapsed()
    );
    std::thread::sleep(DEFAULT_RACY_WINDOW + Duration::from_millis(100));

    let cache = Cache::open(&store).expect("cache");
    let pass = |label: &str| {
        let t = Instant::now();
        let hasher = cache.stat_hasher(&ctx).expect("hasher");
        let opened = t.elapsed();
        for p in &paths {
            hasher.sha256(p, None).expect("hash");
        }
        let after_hash = t.elapsed();
        hasher.flush().expect("flush");
        let total = t.elapsed();
        println!(
            "{label:<6} {total:>10.2?}  (load {opened:.2?}, hash {:.2?}, write {:.2?}; {} read, {} from the cache)",
            after_hash.saturating_sub(opened),
            total.saturating_sub(after_hash),
            hasher.misses(),
            hasher.hits()
        );
        total
    };
    let cold = pass("cold");
    let warm = pass("warm");
    println!(
        "warm / cold = {:.3} ({:.1}x faster)",
        warm.as_secs_f64() / cold.as_secs_f64(),
        cold.as_secs_f64() / warm.as_secs_f64()
    );
}
