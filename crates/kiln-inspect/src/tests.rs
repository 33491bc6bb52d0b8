//! The analysis and the diff on layers built here, as tars in memory.

use std::io::Cursor;

use kiln_layer::Digest;

use crate::ci::Rules;
use crate::{
    Analysis, Analyzer, Aspects, CacheKind, ChangeKind, Differ, LayerInfo, Side, Walk, WasteReason,
};

/// One tar entry to build.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32, u64),
    Link(&'a str, &'a str),
    Gone(&'a str),
    Opaque(&'a str),
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E::File(path, data, 0o644, 0)
}

fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind, size: usize, mode, uid| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(0);
        h.set_mtime(uid * 1000);
        h
    };
    for e in entries {
        match e {
            E::Dir(p) => b
                .append_data(
                    &mut header(tar::EntryType::Directory, 0, 0o755, 0),
                    p,
                    &[][..],
                )
                .unwrap(),
            E::File(p, data, mode, uid) => b
                .append_data(
                    &mut header(tar::EntryType::Regular, data.len(), *mode, *uid),
                    p,
                    *data,
                )
                .unwrap(),
            E::Link(p, target) => b
                .append_link(&mut header(tar::EntryType::Symlink, 0, 0o777, 0), p, target)
                .unwrap(),
            E::Gone(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
                let wh = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                b.append_data(
                    &mut header(tar::EntryType::Regular, 0, 0o644, 0),
                    wh,
                    &[][..],
                )
                .unwrap();
            }
            E::Opaque(dir) => b
                .append_data(
                    &mut header(tar::EntryType::Regular, 0, 0o644, 0),
                    format!("{dir}/.wh..wh..opq"),
                    &[][..],
                )
                .unwrap(),
        }
    }
    b.into_inner().unwrap()
}

fn info(i: usize) -> LayerInfo {
    LayerInfo {
        digest: Digest::of(format!("layer {i}").as_bytes()),
        diff_id: None,
        history: Some((i, format!("step {i}"))),
    }
}

fn analyze(layers: &[Vec<u8>]) -> Analysis {
    let mut a = Analyzer::new();
    for (i, l) in layers.iter().enumerate() {
        // Seekable and uncompressed: the header-only path.
        a.add_layer_file(info(i), Cursor::new(l)).unwrap();
    }
    a.finish()
}

fn changes(a: &Analysis, layer: usize) -> Vec<(String, ChangeKind, u64)> {
    let mut v: Vec<_> = a.layers[layer]
        .changes
        .iter()
        .map(|c| (a.tree.path(c.node), c.change, c.bytes))
        .collect();
    v.sort();
    v
}

#[test]
fn layers_report_what_they_add_change_and_remove() {
    let l0 = tar(&[
        E::Dir("etc/"),
        file("etc/a", b"0123456789"),
        E::Dir("bin/"),
        E::Link("bin/sh", "busybox"),
        E::Dir("d/"),
        file("d/x", b"xxxx"),
        file("d/y", b"yy"),
    ]);
    let l1 = tar(&[
        E::Dir("etc/"),
        file("etc/a", b"01234567890123456789"),
        file("etc/b", b"b"),
        E::Gone("bin/sh"),
        E::Gone("d"),
    ]);
    let a = analyze(&[l0, l1]);
    assert_eq!(
        a.layers[0].size,
        10 + 7 + 4 + 2,
        "files plus the link's target"
    );
    assert_eq!(a.layers[0].added.files, 4);
    assert_eq!(
        changes(&a, 1),
        vec![
            ("/bin/sh".into(), ChangeKind::Removed, 7),
            ("/d".into(), ChangeKind::Removed, 6),
            ("/etc".into(), ChangeKind::Changed, 0),
            ("/etc/a".into(), ChangeKind::Changed, 20),
            ("/etc/b".into(), ChangeKind::Added, 1),
        ]
    );
    assert_eq!((a.layers[1].added.files, a.layers[1].added.bytes), (1, 1));
    assert_eq!(
        (a.layers[1].changed.files, a.layers[1].changed.bytes),
        (1, 20)
    );
    assert_eq!(
        (a.layers[1].removed.files, a.layers[1].removed.bytes),
        (3, 13)
    );
    assert_eq!((a.total.files, a.total.bytes), (2, 21));
}

#[test]
fn dive_numbers_follow_dives_definitions() {
    // Layer 0 writes /a (100), /d/x (50), /d/y (30), /f (40); layer 1 writes /a again;
    // layer 2 deletes the directory /d and the file /f.
    let l0 = tar(&[
        file("a", &[1; 100]),
        E::Dir("d/"),
        file("d/x", &[2; 50]),
        file("d/y", &[3; 30]),
        file("f", &[4; 40]),
    ]);
    let l1 = tar(&[E::File("a", &[1; 100], 0o600, 0)]);
    let l2 = tar(&[E::Gone("d"), E::Gone("f")]);
    let a = analyze(&[l0, l1, l2]);
    // Leaves per path, sizes per layer: /a 100+100, /d/x 50, /d/y 30, /d (the whiteout
    // of a directory: what it held) 80, /f 40+0 (a deleted file counts 0).
    let minimum = 100 + 50 + 30 + 80; // and 0 for /f
    let all = 200 + 50 + 30 + 80 + 40;
    assert!((a.dive.efficiency - f64::from(minimum) / f64::from(all)).abs() < 1e-12);
    let ineff: Vec<_> = a
        .dive
        .inefficiencies
        .iter()
        .map(|i| (a.tree.path(i.node), i.count, i.bytes))
        .collect();
    assert_eq!(ineff, vec![("/a".into(), 2, 200), ("/f".into(), 2, 40)]);
    assert_eq!(a.dive.wasted_bytes, 240);
    assert_eq!(a.dive.size_bytes, 220 + 100);
    assert_eq!(a.dive.user_size_bytes, 100);
    assert!((a.dive.wasted_user_percent - 2.4).abs() < 1e-12);
    // The rules see those numbers.
    let results = Rules::default().evaluate(&a.dive, a.total.bytes);
    assert!(
        results
            .iter()
            .any(|r| r.rule == crate::ci::RuleName::LowestEfficiency
                && r.status == crate::ci::Status::Fail)
    );
}

#[test]
fn a_layer_without_duplicates_is_fully_efficient() {
    let a = analyze(&[tar(&[E::Dir("x/"), file("x/1", b"one")])]);
    assert!((a.dive.efficiency - 1.0).abs() < f64::EPSILON);
    assert!(a.dive.inefficiencies.is_empty());
    assert!(a.waste.is_empty());
}

#[test]
fn waste_is_attributed_to_the_layer_that_wrote_it_with_the_reason() {
    let l0 = tar(&[
        file("big", &[0; 1000]),
        E::Dir("app/"),
        file("app/x", &[7; 10]),
        file("app/y", &[7; 10]),
    ]);
    let l1 = tar(&[
        E::Gone("big"),
        E::File("app/x", &[7; 10], 0o755, 0),
        E::File("app/y", &[8; 11], 0o644, 0),
        E::Dir("var/lib/apt/lists/"),
        file("var/lib/apt/lists/deb.debian.org_dists", &[5; 500]),
        file("var/lib/apt/lists/lock", b""),
        E::Dir("root/.cache/pip/"),
        file("root/.cache/pip/wheel.whl", &[6; 300]),
        E::Dir("home/app/.npm/_cacache/"),
        file("home/app/.npm/_cacache/index", &[6; 70]),
    ]);
    let a = analyze(&[l0, l1]);
    let mut w: Vec<_> = a
        .waste
        .iter()
        .map(|w| (a.tree.path(w.node), w.layer, w.reason, w.bytes))
        .collect();
    w.sort();
    assert_eq!(
        w,
        vec![
            ("/app/x".into(), 0, WasteReason::MetadataOnly { by: 1 }, 10),
            ("/app/y".into(), 0, WasteReason::Overwritten { by: 1 }, 10),
            ("/big".into(), 0, WasteReason::Deleted { by: 1 }, 1000),
            (
                "/home/app/.npm/_cacache/index".into(),
                1,
                WasteReason::Cache(CacheKind::Npm),
                70
            ),
            (
                "/root/.cache/pip/wheel.whl".into(),
                1,
                WasteReason::Cache(CacheKind::Pip),
                300
            ),
            (
                "/var/lib/apt/lists/deb.debian.org_dists".into(),
                1,
                WasteReason::Cache(CacheKind::AptLists),
                500
            ),
        ]
    );
    let findings = a.findings();
    assert_eq!(findings[0].reason, WasteReason::Deleted { by: 1 });
    assert_eq!(
        (findings[0].layer, findings[0].bytes, findings[0].files),
        (0, 1000, 1)
    );
    assert_eq!(a.wasted_bytes(), 1000 + 10 + 10 + 500 + 300 + 70);
}

#[test]
fn an_opaque_directory_hides_what_the_layers_below_put_in_it() {
    let l0 = tar(&[
        E::Dir("d/"),
        file("d/a", &[1; 5]),
        E::Dir("d/sub/"),
        file("d/sub/b", &[1; 6]),
    ]);
    let l1 = tar(&[E::Dir("d/"), E::Opaque("d"), file("d/c", &[1; 7])]);
    let a = analyze(&[l0, l1]);
    assert_eq!((a.total.files, a.total.bytes), (1, 7));
    assert_eq!(
        changes(&a, 1),
        vec![
            ("/d".into(), ChangeKind::Changed, 0),
            ("/d/a".into(), ChangeKind::Removed, 5),
            ("/d/c".into(), ChangeKind::Added, 7),
            ("/d/sub".into(), ChangeKind::Removed, 6),
        ]
    );
    let deleted: u64 = a
        .waste
        .iter()
        .filter(|w| matches!(w.reason, WasteReason::Deleted { by: 1 }))
        .map(|w| w.bytes)
        .sum();
    assert_eq!(deleted, 11);
}

#[test]
fn compressed_and_streamed_layers_read_as_the_plain_ones() {
    let l0 = tar(&[E::Dir("d/"), file("d/a", &[1; 5000]), file("d/b", b"b")]);
    let l1 = tar(&[file("d/a", &[2; 5000]), E::Gone("d/b")]);
    let plain = analyze(&[l0.clone(), l1.clone()]);
    let mut streamed = Analyzer::new();
    for (i, l) in [&l0, &l1].into_iter().enumerate() {
        let (gz, _) =
            kiln_layer::compress_tar(&l[..], Vec::new(), kiln_layer::Compression::default())
                .unwrap();
        assert_ne!(&gz, l);
        if i == 0 {
            streamed.add_layer(info(i), &gz[..]).unwrap();
        } else {
            streamed.add_layer_file(info(i), Cursor::new(gz)).unwrap();
        }
    }
    let streamed = streamed.finish();
    assert_eq!(plain.dive, streamed.dive);
    assert_eq!(plain.waste, streamed.waste);
    assert_eq!(plain.total, streamed.total);
}

#[test]
fn a_truncated_layer_is_an_error() {
    let l0 = tar(&[file("a", &[1; 5000])]);
    let mut a = Analyzer::new();
    assert!(a.add_layer(info(0), &l0[..1000]).is_err());
}

fn diff(old: &[Vec<u8>], new: &[Vec<u8>]) -> Vec<(String, ChangeKind, Vec<&'static str>)> {
    let mut d = Differ::new();
    for (side, layers) in [(Side::Old, old), (Side::New, new)] {
        for l in layers {
            let mut entries = Vec::new();
            Walk { hash: true }
                .file(Cursor::new(l), |e| entries.push(e))
                .unwrap();
            d.add_entries(side, entries);
        }
    }
    let out = d.finish();
    out.entries
        .iter()
        .map(|e| (out.tree.path(e.node), e.change, e.aspects.names()))
        .collect()
}

#[test]
fn diff_names_each_path_that_differs_and_how() {
    let base = tar(&[
        E::Dir("app/"),
        file("app/same", b"same"),
        file("app/content", b"aaaa"),
        E::File("app/mode", b"m", 0o644, 0),
        E::File("app/owner", b"o", 0o644, 0),
        E::Link("app/link", "one"),
        file("app/gone", b"g"),
    ]);
    let other = tar(&[
        E::Dir("app/"),
        file("app/same", b"same"),
        file("app/content", b"bbbb"),
        E::File("app/mode", b"m", 0o755, 0),
        E::File("app/owner", b"o", 0o644, 1),
        E::Link("app/link", "two"),
        file("app/new", b"n"),
    ]);
    let d = diff(std::slice::from_ref(&base), &[other]);
    assert_eq!(
        d,
        vec![
            ("/app/content".into(), ChangeKind::Changed, vec!["content"]),
            ("/app/gone".into(), ChangeKind::Removed, vec![]),
            ("/app/link".into(), ChangeKind::Changed, vec!["link"]),
            ("/app/mode".into(), ChangeKind::Changed, vec!["mode"]),
            // The owner's uid also set its mtime in `tar` above.
            ("/app/new".into(), ChangeKind::Added, vec![]),
            (
                "/app/owner".into(),
                ChangeKind::Changed,
                vec!["owner", "mtime"]
            ),
        ]
    );
    assert!(diff(std::slice::from_ref(&base), std::slice::from_ref(&base)).is_empty());
}

#[test]
fn diff_compares_final_filesystems_not_layers() {
    // The same final tree made in one layer or in two (with a deletion) is no difference.
    let one = tar(&[E::Dir("x/"), file("x/a", b"a")]);
    let two_a = tar(&[E::Dir("x/"), file("x/a", b"a"), file("x/tmp", b"t")]);
    let two_b = tar(&[E::Gone("x/tmp")]);
    assert!(diff(std::slice::from_ref(&one), &[two_a, two_b]).is_empty());
    let d = diff(&[one], &[tar(&[E::Dir("x/"), file("x/a", b"A")])]);
    assert_eq!(
        d,
        vec![("/x/a".into(), ChangeKind::Changed, vec!["content"])]
    );
    assert!(Aspects::CONTENT.contains(Aspects::CONTENT));
}

#[test]
fn the_walk_reads_long_names_links_and_whiteouts_as_layer_tools_do() {
    let long = format!("deep/{}/file", "d".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let fresh = |kind| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    };
    let mut h = fresh(tar::EntryType::Regular);
    h.set_size(3);
    h.set_mode(0o4755);
    b.append_data(&mut h.clone(), &long, &b"abc"[..]).unwrap();
    let mut l = fresh(tar::EntryType::Link);
    b.append_link(&mut l, "./hard", &long).unwrap();
    for p in ["./x/.wh.gone", "x/.wh..wh..opq", "x/.wh..wh.plnk", "./"] {
        let mut w = fresh(if p == "./" {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        b.append_data(&mut w, p, &[][..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut entries = Vec::new();
    Walk { hash: true }
        .reader(&tar[..], |e| entries.push(e))
        .unwrap();
    assert_eq!(
        entries.len(),
        4,
        "the root and AUFS link records are no paths"
    );
    assert_eq!(entries[0].path, long.as_bytes());
    let crate::Op::Write(m) = &entries[0].op else {
        panic!("{:?}", entries[0])
    };
    assert_eq!((m.size, m.mode), (3, 0o4755));
    assert_eq!(
        m.digest.map(|d| Digest::from_sha256(&d)),
        Some(Digest::of(b"abc"))
    );
    let crate::Op::Write(link) = &entries[1].op else {
        panic!("{:?}", entries[1])
    };
    assert_eq!(link.link.as_deref(), Some(long.as_bytes()));
    assert_eq!(link.content_size(), 0, "a hard link adds no bytes");
    assert_eq!(
        (&entries[2].path[..], &entries[2].op),
        (&b"x/gone"[..], &crate::Op::Whiteout)
    );
    assert_eq!(
        (&entries[3].path[..], &entries[3].op),
        (&b"x"[..], &crate::Op::Opaque)
    );
}

#[test]
fn a_path_written_twice_in_one_layer_counts_once_but_dive_sizes_both() {
    let l0 = tar(&[file("a", &[1; 10]), file("a", &[2; 30])]);
    let a = analyze(&[l0]);
    assert_eq!(
        a.layers[0].size, 30,
        "the last entry is what the layer holds"
    );
    assert_eq!(a.layers[0].dive_size, 40, "dive adds every entry's size");
    assert_eq!(a.layers[0].added.files, 1);
    assert!(a.dive.inefficiencies.is_empty());
}

#[test]
fn the_final_filesystem_sums_into_its_directories() {
    let l0 = tar(&[
        E::Dir("usr/"),
        E::Dir("usr/lib/"),
        file("usr/lib/a", b"aaaa"),
        file("usr/lib/b", b"bb"),
        E::Dir("d/"),
        file("d/x", b"xxxxxxxx"),
        E::Link("sh", "busybox"),
    ]);
    let l1 = tar(&[E::Gone("d"), E::Dir("usr/"), file("usr/c", b"c")]);
    let a = analyze(&[l0, l1]);
    let mut files: Vec<(String, u64, usize)> = a
        .files
        .iter()
        .map(|f| (a.tree.path(f.node), f.bytes, f.layer))
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            ("/sh".into(), 7, 0),
            ("/usr/c".into(), 1, 1),
            ("/usr/lib/a".into(), 4, 0),
            ("/usr/lib/b".into(), 2, 0),
        ],
        "the deleted directory is gone"
    );
    let sums = a.dir_bytes();
    let at = |p: &str| sums[a.tree.lookup(p.as_bytes()).unwrap() as usize];
    assert_eq!(at("/"), a.total.bytes);
    assert_eq!(at("/"), 14);
    assert_eq!(at("usr"), 7);
    assert_eq!(at("usr/lib"), 6);
    assert_eq!(at("d"), 0);
}
