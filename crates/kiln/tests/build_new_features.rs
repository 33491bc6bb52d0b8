//! Dockerfile features newer than Docker 20.10's BuildKit, with explicit expected results
//! from today's Dockerfile reference: heredocs, `COPY --parents`, `--exclude`, `--link`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_test_support::{KilnEnv, run};

fn setup() -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), &[])
}

fn kiln(store: &Path, args: &[&str]) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(store)
        .args(args))
}

/// Build `dockerfile` with `files` in its context; the final stage's filesystem.
fn build(
    tmp: &Path,
    store: &Path,
    name: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
) -> PathBuf {
    let ctx = tmp.join(name);
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (p, c) in files {
        let path = ctx.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, c).unwrap();
    }
    let out = tmp.join(format!("{name}-out"));
    kiln(
        store,
        &[
            "build",
            "-q",
            "-o",
            out.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn heredocs() {
    let Some(env) = setup() else { return };
    let (tmp, store) = (&env.dir, &env.store);
    let out = build(
        tmp,
        store,
        "heredocs",
        "FROM busybox\n\
         ENV NAME=kiln\n\
         RUN <<EOF\n\
         echo \"script $NAME\" > /script\n\
         echo second-line >> /script\n\
         EOF\n\
         RUN cat > /inline <<EOT\n\
         inline $NAME\n\
         EOT\n\
         COPY <<EOF /copied\n\
         copied $NAME \"quoted\"\n\
         EOF\n\
         COPY <<-'RAW' <<TWO /dir/\n\
         \traw $NAME\n\
         \tRAW\n\
         two\n\
         TWO\n",
        &[],
    );
    assert_eq!(read(&out.join("script")), "script kiln\nsecond-line\n");
    assert_eq!(read(&out.join("inline")), "inline kiln\n");
    assert_eq!(
        read(&out.join("copied")),
        "copied kiln \"quoted\"\n",
        "expanded, quotes kept"
    );
    assert_eq!(
        read(&out.join("dir/RAW")),
        "raw $NAME\n",
        "quoted delimiter: no expansion; <<- strips tabs"
    );
    assert_eq!(read(&out.join("dir/TWO")), "two\n");
}

#[test]
fn copy_parents() {
    let Some(env) = setup() else { return };
    let (tmp, store) = (&env.dir, &env.store);
    let out = build(
        tmp,
        store,
        "parents",
        "FROM scratch\nCOPY --parents a/b/c.txt d/e.txt /out/\nCOPY --parents ./x/./y/z.txt /pivot/\nCOPY --parents */*.md /docs/\n",
        &[
            ("a/b/c.txt", "c"),
            ("d/e.txt", "e"),
            ("x/y/z.txt", "z"),
            ("p/one.md", "1"),
            ("q/two.md", "2"),
            ("q/no.txt", "n"),
        ],
    );
    assert_eq!(read(&out.join("out/a/b/c.txt")), "c");
    assert_eq!(read(&out.join("out/d/e.txt")), "e");
    assert_eq!(
        read(&out.join("pivot/y/z.txt")),
        "z",
        "`/./` pivots the kept path"
    );
    assert!(!out.join("pivot/x").exists());
    assert_eq!(read(&out.join("docs/p/one.md")), "1");
    assert_eq!(read(&out.join("docs/q/two.md")), "2");
    assert!(!out.join("docs/q/no.txt").exists());
}

#[test]
fn copy_exclude() {
    let Some(env) = setup() else { return };
    let (tmp, store) = (&env.dir, &env.store);
    let out = build(
        tmp,
        store,
        "exclude",
        "FROM scratch\nCOPY --exclude=*.log --exclude=tmp src /dst/\nCOPY --exclude=**/*.txt --exclude=!keep.txt . /all/\n",
        &[
            ("src/a.c", "a"),
            ("src/b.log", "b"),
            ("src/tmp/t", "t"),
            ("src/sub/c.log", "c"),
            ("keep.txt", "k"),
            ("sub/drop.txt", "d"),
        ],
    );
    assert_eq!(read(&out.join("dst/a.c")), "a");
    assert!(!out.join("dst/b.log").exists());
    assert!(!out.join("dst/tmp").exists());
    assert_eq!(
        read(&out.join("dst/sub/c.log")),
        "c",
        "`*.log` does not cross `/`"
    );
    assert_eq!(read(&out.join("all/keep.txt")), "k", "`!` re-includes");
    assert!(!out.join("all/sub/drop.txt").exists());
}

#[test]
fn copy_link_gives_the_same_files() {
    let Some(env) = setup() else { return };
    let (tmp, store) = (&env.dir, &env.store);
    let df = |link: &str| {
        format!(
            "FROM busybox AS b\nRUN mkdir -p /opt/app && echo old > /opt/app/f\nFROM b\nCOPY {link} new.txt /opt/app/\nCOPY {link} dir /opt/tree\n"
        )
    };
    let files: &[(&str, &str)] = &[("new.txt", "n"), ("dir/x", "x")];
    let linked = build(tmp, store, "linked", &df("--link"), files);
    let plain = build(tmp, store, "plain", &df(""), files);
    for p in ["opt/app/new.txt", "opt/app/f", "opt/tree/x"] {
        assert_eq!(read(&linked.join(p)), read(&plain.join(p)), "{p}");
    }
}
