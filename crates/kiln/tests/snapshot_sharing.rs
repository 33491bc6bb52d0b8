//! Issue 12's file sharing between snapshots, through the real binary and overlayfs (root):
//! a `COPY --from` links its source's files and a COPY that runs again links its unchanged
//! files from its previous snapshot, yet no stack shows one inode under two names the layers
//! made separately. Under `CI=true` a missing prerequisite fails.

use std::fs;
use std::path::Path;
use std::process::Command;

use kiln_test_support::{KilnEnv, ok};

fn store_env() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

/// Issue 12, through overlayfs: a `COPY --from` shares its source's files (the snapshot
/// records whose), yet no RUN and no export sees one inode under two names that the layers
/// made separately: not when a stage copies from its own base, nor when it copies a copy.
#[test]
fn copy_from_shares_files_but_no_stack_shows_them_twice() {
    let Some(env) = store_env() else { return };
    let df = "FROM busybox AS a\nRUN mkdir /x && echo 1 > /x/one && echo 2 > /x/two\n\
              FROM busybox AS c\nCOPY --from=a /x /a\n\
              FROM a\nCOPY --from=a /x /y\nCOPY --from=c /a /from-c\n\
              RUN [ \"$(stat -c %i /x/one)\" != \"$(stat -c %i /y/one)\" ] && \
                  [ \"$(stat -c %i /x/one)\" != \"$(stat -c %i /from-c/one)\" ] && \
                  [ \"$(stat -c %i /y/one)\" != \"$(stat -c %i /from-c/one)\" ] && \
                  cat /x/one /y/two /from-c/one > /seen\n";
    let ctx = env.context("shared-files", df, &[]);
    let out = env.store.parent().unwrap().join("shared-files-out");
    let _ = fs::remove_dir_all(&out);
    let dest = format!("type=local,dest={}", out.display());
    ok(&env.kiln(&["build", "-q", "-o", &dest, ctx.to_str().unwrap()]));
    assert_eq!(fs::read_to_string(out.join("seen")).unwrap(), "1\n2\n1\n");
    let shares = fs::read_dir(env.store.join("snapshots"))
        .unwrap()
        .filter(|s| s.as_ref().unwrap().path().join("shares").is_file())
        .count();
    assert!(shares >= 1, "stage c's COPY --from shares a's files");
    for f in ["x/one", "y/one", "from-c/one"] {
        use std::os::unix::fs::MetadataExt as _;
        let m = fs::symlink_metadata(out.join(f)).unwrap();
        assert_eq!(m.nlink(), 1, "{f} is a file of its own in the export");
    }
}

/// The snapshot of layer `i` of `image`, by its `diff_id` (`snapshots/<12 hex>/fs`).
fn layer_snapshot(store: &Path, image: &str, i: usize) -> std::path::PathBuf {
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(store)
            .args(["inspect", image])
            .output()
            .unwrap()))
        .unwrap();
    let diff_id = inspect[0]["RootFS"]["Layers"][i]
        .as_str()
        .unwrap()
        .to_owned();
    store.join("snapshots").join(&diff_id[7..19]).join("fs")
}

/// Issue 12: a change to one file of a big `COPY` writes that file: the others are hard
/// links to the previous build's snapshot of the same step, taken only after comparing their
/// content (a file changed in place, with its size and mtime put back, is still written).
#[test]
fn a_changed_copy_links_the_files_that_did_not_change() {
    use std::os::unix::fs::MetadataExt as _;
    let Some(env) = store_env() else { return };
    let files: Vec<(String, String)> = (0..20)
        .map(|i| (format!("data/f{i}"), format!("content {i:04}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let ctx = env.context(
        "relink",
        "FROM busybox\nCOPY data/ /data/\nRUN cat /data/f1 /data/f7 > /seen\n",
        &refs,
    );
    ok(&env.kiln(&["build", "-q", "-t", "relink:1", ctx.to_str().unwrap()]));
    let before = layer_snapshot(&env.store, "relink:1", 1);
    let f7 = ctx.join("data/f7");
    let mtime = fs::metadata(&f7).unwrap().modified().unwrap();
    fs::write(&f7, "CHANGED 0007\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&f7)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    ok(&env.kiln(&["build", "-q", "-t", "relink:2", ctx.to_str().unwrap()]));
    let after = layer_snapshot(&env.store, "relink:2", 1);
    assert_ne!(before, after, "a new layer");
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    for i in (0..20).filter(|i| *i != 7) {
        let f = format!("data/f{i}");
        assert_eq!(ino(&before.join(&f)), ino(&after.join(&f)), "{f} is linked");
    }
    assert_ne!(ino(&before.join("data/f7")), ino(&after.join("data/f7")));
    assert_eq!(
        fs::read_to_string(after.join("data/f7")).unwrap(),
        "CHANGED 0007\n"
    );
    assert_eq!(
        fs::read_to_string(before.join("data/f7")).unwrap(),
        "content 0007\n",
        "the old snapshot is untouched"
    );
    let seen = layer_snapshot(&env.store, "relink:2", 2);
    assert_eq!(
        fs::read_to_string(seen.join("seen")).unwrap(),
        "content 0001\nCHANGED 0007\n"
    );
    let fsck = env.kiln(&["fsck"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}
