//! The stat cache: unchanged files are not read, changed ones always are.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use kiln_cache::Cache;
use kiln_fileop::{ContentHasher, ReadingHasher};

fn sha(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

/// A hasher that trusts every row whose stat matches (no racy window: the tests write and
/// hash within one timestamp tick).
fn exact<'c>(cache: &'c Cache, root: &std::path::Path) -> kiln_cache::StatCachedHasher<'c> {
    cache
        .stat_hasher(root)
        .unwrap()
        .with_racy_window(Duration::ZERO)
}

#[test]
fn same_size_and_mtime_but_new_ctime_is_rehashed() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let file = ctx.path().join("config.txt");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::write(&file, b"aaaa").unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let first = exact(&cache, ctx.path());
    assert_eq!(first.sha256(&file, None).unwrap(), sha(b"aaaa"));
    assert_eq!(first.misses(), 1);
    assert_eq!(first.flush().unwrap(), 1);
    drop(first);

    // Unchanged: answered from the cache.
    let second = exact(&cache, ctx.path());
    assert_eq!(second.sha256(&file, None).unwrap(), sha(b"aaaa"));
    assert_eq!((second.hits(), second.misses()), (1, 0));
    drop(second);

    // Rewritten in place with the same size, mtime put back: only ctime tells.
    let before = fs::metadata(&file).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    fs::write(&file, b"bbbb").unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let after = fs::metadata(&file).unwrap();
    assert_eq!(
        (after.ino(), after.size(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.size(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    assert_ne!(
        (after.ctime(), after.ctime_nsec()),
        (before.ctime(), before.ctime_nsec()),
        "the filesystem did not move ctime"
    );
    let third = exact(&cache, ctx.path());
    assert_eq!(third.sha256(&file, None).unwrap(), sha(b"bbbb"));
    assert_eq!((third.hits(), third.misses()), (0, 1));
}

#[test]
fn racily_clean_files_are_read_again() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let file = ctx.path().join("fresh");
    fs::write(&file, b"x").unwrap();
    for _ in 0..2 {
        // Written just now: within the default racy window, so never trusted yet.
        let h = cache.stat_hasher(ctx.path()).unwrap();
        assert_eq!(h.sha256(&file, None).unwrap(), sha(b"x"));
        assert_eq!((h.hits(), h.misses()), (0, 1));
    }
}

#[test]
fn agrees_with_reading_for_a_tree_and_sees_every_kind_of_change() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    fs::create_dir_all(ctx.path().join("src/deep")).unwrap();
    let paths: Vec<_> = (0..50)
        .map(|i| {
            let p = ctx.path().join(format!("src/deep/f{i}"));
            fs::write(&p, format!("content {i}")).unwrap();
            p
        })
        .collect();
    let check = |expect_hits: u64| {
        let h = exact(&cache, ctx.path());
        for p in &paths {
            assert_eq!(
                h.sha256(p, None).unwrap(),
                ReadingHasher.sha256(p, None).unwrap(),
                "{p:?}"
            );
        }
        assert_eq!(h.hits(), expect_hits);
    };
    check(0);
    check(50);
    // A size change, a rename over (new inode), a mtime change.
    fs::write(&paths[0], "longer content than before").unwrap();
    fs::write(ctx.path().join("tmp"), "renamed in").unwrap();
    fs::rename(ctx.path().join("tmp"), &paths[1]).unwrap();
    fs::File::options()
        .write(true)
        .open(&paths[2])
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(5))
        .unwrap();
    check(47);
    // Paths outside the root are read and never recorded.
    let outside = tempfile::NamedTempFile::new().unwrap();
    fs::write(outside.path(), "o").unwrap();
    let h = cache.stat_hasher(ctx.path()).unwrap();
    assert_eq!(h.sha256(outside.path(), None).unwrap(), sha(b"o"));
    assert_eq!(h.flush().unwrap(), 0);
}

#[test]
fn roots_do_not_share_rows() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    fs::write(a.path().join("f"), "a").unwrap();
    fs::write(b.path().join("f"), "b").unwrap();
    let ha = exact(&cache, a.path());
    ha.sha256(&a.path().join("f"), None).unwrap();
    drop(ha);
    let hb = exact(&cache, b.path());
    assert_eq!(hb.sha256(&b.path().join("f"), None).unwrap(), sha(b"b"));
    assert_eq!(hb.hits(), 0);
    assert_ne!(hb.root_id(), kiln_cache::context_root_id(a.path()).unwrap());
}

/// The planner's `lstat` is what a row is checked against: no second `stat`, and a stamp
/// that differs from the row is a miss even when the file on disk still matches it.
#[test]
fn the_planners_stamp_is_what_is_checked() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let file = ctx.path().join("f");
    fs::write(&file, b"data").unwrap();
    let stamp = kiln_fileop::Stamp::of(&fs::symlink_metadata(&file).unwrap());

    let first = exact(&cache, ctx.path());
    assert_eq!(first.sha256(&file, Some(&stamp)).unwrap(), sha(b"data"));
    assert_eq!(first.flush().unwrap(), 1);
    drop(first);

    let second = exact(&cache, ctx.path());
    assert_eq!(second.sha256(&file, Some(&stamp)).unwrap(), sha(b"data"));
    assert_eq!((second.hits(), second.misses()), (1, 0));
    let stale = kiln_fileop::Stamp {
        ctime_ns: stamp.ctime_ns + 1,
        ..stamp
    };
    assert_eq!(second.sha256(&file, Some(&stale)).unwrap(), sha(b"data"));
    assert_eq!((second.hits(), second.misses()), (1, 1));
    // Read, but not recorded: the file read is not the one the stamp describes.
    assert_eq!(second.flush().unwrap(), 0);
}
