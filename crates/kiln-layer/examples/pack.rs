//! Packs a directory into a layer file and prints its digests: `pack DIR OUT [gzip|zstd|none]`.
//! Used by `bench/pack.sh`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use kiln_layer::{Compression, PackOptions, pack_dir};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(args.len() >= 3, "usage: pack DIR OUT [gzip|zstd|none]");
    let compression = match args.get(3).map_or("gzip", String::as_str) {
        "zstd" => Compression::Zstd { level: 3 },
        "none" => Compression::None,
        _ => Compression::default(),
    };
    let out = BufWriter::with_capacity(1 << 20, File::create(&args[2]).expect("create output"));
    let opts = PackOptions {
        compression,
        source_date_epoch: None,
    };
    let (_, d) = pack_dir(Path::new(&args[1]), out, &opts).expect("pack");
    println!(
        "diff_id {} ({} bytes)\ndigest  {} ({} bytes)",
        d.diff_id, d.uncompressed_size, d.digest, d.size
    );
}
