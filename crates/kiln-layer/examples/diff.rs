//! Diffs a new tree against lower dirs into a gzip layer written to /dev/null and prints the
//! seconds it took: `diff upper|full NEW [LOWER...]` (lower dirs topmost first). Used by
//! `bench/run-step.sh`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_layer::{DiffOptions, NewTree, diff};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(args.len() >= 3, "usage: diff upper|full NEW [LOWER...]");
    let new = Path::new(&args[2]);
    let tree = if args[1] == "full" {
        NewTree::Full(new)
    } else {
        NewTree::Upper(new)
    };
    let lower: Vec<PathBuf> = args[3..].iter().map(PathBuf::from).collect();
    let start = Instant::now();
    let sink = std::fs::File::create("/dev/null").expect("open /dev/null");
    let (_, d, stats) = diff(tree, &lower, sink, &DiffOptions::default()).expect("diff");
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} entries, {} bytes of tar",
        stats.entries, d.uncompressed_size
    );
    println!("{secs:.4}");
}
