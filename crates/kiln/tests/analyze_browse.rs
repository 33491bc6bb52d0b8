//! `kiln analyze -i` through a pseudo-terminal (a private tmux server): the layers and the
//! selected layer's files, added, changed and removed files marked, wasted files marked,
//! the keys, the terminal's settings put back on exit; and a clear refusal without a
//! terminal. Needs root (RUN steps run in namespaces) and `tmux`; under `CI=true` a missing
//! prerequisite fails.

// Tests read their own settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_test_support::{KilnEnv, ok, text};

fn store_env(tools: &[&str]) -> Option<KilnEnv> {
    KilnEnv::new(Path::new(env!("CARGO_BIN_EXE_kiln")), tools)
}

/// An image whose layer 1 writes `/app/junk.bin`, `keep.txt` and `stay.txt`, and whose
/// layer 2 deletes the first and writes the second again.
fn image(env: &KilnEnv, tag: &str) {
    let df = "FROM busybox\nCOPY app /app\nRUN rm /app/junk.bin && echo new > /app/keep.txt\n";
    let ctx = env.context(
        tag,
        df,
        &[("app/keep.txt", "keep\n"), ("app/stay.txt", "stay\n")],
    );
    fs::write(ctx.join("app/junk.bin"), vec![9u8; 70_000]).unwrap();
    ok(&env.kiln(&[
        "build",
        "-q",
        "-t",
        &format!("{tag}:1"),
        ctx.to_str().unwrap(),
    ]));
}

/// A tmux server of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "browse"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// The screen once `pred` holds for it (at most ten seconds).
    fn screen_when(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = text(&self.cmd(&["capture-pane", "-p", "-t", "browse"]).stdout);
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The files' pane (right of `│`), line by line.
fn files(screen: &str) -> String {
    screen
        .lines()
        .filter_map(|l| l.split_once('│').map(|(_, r)| r))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line of `screen` that holds `needle`.
fn line<'s>(screen: &'s str, needle: &str) -> &'s str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` on the screen:\n{screen}"))
}

#[test]
fn browse_layers_and_their_files_in_a_terminal_and_restore_it() {
    let Some(env) = store_env(&["tmux"]) else {
        return;
    };
    image(&env, "browse");
    let before = env.dir.join("stty-before");
    let after = env.dir.join("stty-after");
    let status = env.dir.join("status");
    let script = format!(
        "stty -g > {before}; {bin} --root {store} analyze -i browse:1; echo $? > {status}.tmp; stty -g > {after}; mv {status}.tmp {status}; sleep 60",
        before = before.display(),
        after = after.display(),
        status = status.display(),
        bin = env!("CARGO_BIN_EXE_kiln"),
        store = env.store.display(),
    );
    let tmux = Tmux {
        socket: format!("kiln-test-{}", std::process::id()),
    };
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "browse",
        "-x",
        "200",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux: {}", text(&out.stderr));
    // The first layer is selected, the layers' pane focused.
    let s = tmux.screen_when("the browser", |s| s.contains("Layers"));
    assert!(line(&s, "▶ #0").contains("kiln import"), "{s}");
    assert!(line(&s, "Layers").contains("> Layers"), "{s}");
    assert!(s.contains("Layer 0:"), "{s}");
    // Down: the COPY's layer, its files as a tree.
    tmux.keys(&["Down"]);
    let s = tmux.screen_when("layer 1", |s| s.contains("Layer 1:"));
    assert!(line(&s, "▶ #1").contains("COPY app /app"), "{s}");
    assert!(line(&s, "app/").contains("+ ▸ app/"), "{s}");
    assert!(
        !files(&s).contains("junk.bin"),
        "closed directories hide their files: {s}"
    );
    // Tab to the files, enter opens `app/`: the file the next layer deletes is wasted.
    tmux.keys(&["Tab", "Enter"]);
    let s = tmux.screen_when("app/ open", |s| files(s).contains("junk.bin"));
    assert!(
        line(&s, "Layer 1:").contains("> Layer 1:"),
        "the files' pane is focused: {s}"
    );
    assert!(line(&s, "▾ app/").contains("+ ▾ app/"), "{s}");
    let f = files(&s);
    let junk = line(&f, " junk.bin  ");
    assert!(
        junk.trim_start().starts_with('+') && junk.contains("70kB") && junk.contains("wasted"),
        "{s}"
    );
    assert!(
        line(&f, " keep.txt  ").contains("wasted"),
        "written again: {s}"
    );
    let stay = line(&f, "stay.txt");
    assert!(
        stay.trim_start().starts_with('+') && !stay.contains("wasted"),
        "{s}"
    );
    // Back to the layers, down: the RUN removes junk.bin and changes keep.txt.
    tmux.keys(&["Tab", "Down", "Tab", "Enter"]);
    let s = tmux.screen_when("layer 2 open", |s| {
        s.contains("Layer 2:") && files(s).contains("junk.bin")
    });
    let f = files(&s);
    assert!(
        line(&f, " junk.bin  ").trim_start().starts_with('-'),
        "removed: {s}"
    );
    assert!(
        line(&f, " keep.txt  ").trim_start().starts_with('~'),
        "changed: {s}"
    );
    assert!(line(&s, "Layer 2:").contains("(+0 ~1 -1)"), "{s}");
    // q quits with status 0 and leaves the terminal as it found it.
    tmux.keys(&["q"]);
    let start = Instant::now();
    while !status.exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "q did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "0");
    assert_eq!(
        fs::read_to_string(&before).unwrap(),
        fs::read_to_string(&after).unwrap(),
        "the terminal's settings were not restored"
    );
    let s = tmux.screen_when("the shell's screen", |s| !s.contains("Layers"));
    assert!(!s.contains("▶"), "the alternate screen was left: {s}");
}

#[test]
fn browse_refuses_without_a_terminal() {
    let Some(env) = store_env(&[]) else { return };
    image(&env, "noterm");
    let out = env.kiln(&["analyze", "-i", "noterm:1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`kiln analyze -i` needs a terminal, and stdout is not one"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing drawn: {}",
        text(&out.stdout)
    );
}
