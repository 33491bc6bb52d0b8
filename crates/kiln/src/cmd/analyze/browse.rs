//! `kiln analyze -i`: the report as a terminal browser. The layers on the left; on the right
//! the files the selected layer adds (`+`), changes (`~`) and removes (`-`) as a tree, with
//! the files it wrote for nothing marked `wasted`. Up/down (or k/j) move in the focused pane,
//! tab switches panes, enter opens or closes a directory, q quits.
//!
//! Plain ANSI on a raw terminal (rustix's termios): the alternate screen, redrawn whole after
//! each key. [`Terminal`] puts the terminal back as it found it when it is dropped, on the
//! way out of an error or a panic too. Every mark is a character, so the browser makes sense
//! without colour (`NO_COLOR` turns colour off; the selection stays in reverse video).
//!
//! The browser's state and its screen ([`Browser`]) know nothing of terminals: tests drive
//! it with keys and read its lines.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal as _, Read as _, Write as _};

use kiln_inspect::{ChangeKind, Kind, NodeId};

use super::Report;
use super::render::made_by;
use crate::cmd::images::human_size;

/// A key the browser acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    Up,
    Down,
    Tab,
    Enter,
    Quit,
}

/// The keys in a chunk of terminal input, in order (unknown bytes and sequences are skipped).
pub(super) fn keys(input: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        let (key, len) = match rest {
            [0x1b, b'[' | b'O', b'A', ..] => (Some(Key::Up), 3),
            [0x1b, b'[' | b'O', b'B', ..] => (Some(Key::Down), 3),
            [0x1b, b'[' | b'O', _, ..] => (None, 3),
            [b'\t', ..] => (Some(Key::Tab), 1),
            [b'\r' | b'\n', ..] => (Some(Key::Enter), 1),
            [b'q' | b'Q' | 3, ..] => (Some(Key::Quit), 1),
            [b'k', ..] => (Some(Key::Up), 1),
            [b'j', ..] => (Some(Key::Down), 1),
            _ => (None, 1),
        };
        out.extend(key);
        i += len;
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pane {
    Layers,
    Files,
}

/// One layer's changes as a tree: each changed path with its ancestors.
struct LayerTree {
    children: HashMap<NodeId, Vec<NodeId>>,
    change: HashMap<NodeId, (ChangeKind, Kind, u64)>,
    /// Bytes changed at and under each node (non-directories only).
    bytes: HashMap<NodeId, u64>,
    wasted: HashSet<NodeId>,
}

/// The browser: what is selected, open and focused.
pub(super) struct Browser<'r, 'a> {
    report: &'r Report<'a>,
    layer: usize,
    focus: Pane,
    tree: LayerTree,
    expanded: HashSet<NodeId>,
    cursor: usize,
    layers_top: usize,
    files_top: usize,
    color: bool,
}

impl<'r, 'a> Browser<'r, 'a> {
    pub(super) fn new(report: &'r Report<'a>, color: bool) -> Self {
        let mut b = Self {
            report,
            layer: 0,
            focus: Pane::Layers,
            tree: LayerTree {
                children: HashMap::new(),
                change: HashMap::new(),
                bytes: HashMap::new(),
                wasted: HashSet::new(),
            },
            expanded: HashSet::new(),
            cursor: 0,
            layers_top: 0,
            files_top: 0,
            color,
        };
        b.select(0);
        b
    }

    fn select(&mut self, layer: usize) {
        let a = self.report.analysis;
        self.layer = layer;
        self.cursor = 0;
        self.files_top = 0;
        self.expanded.clear();
        let mut t = LayerTree {
            children: HashMap::new(),
            change: HashMap::new(),
            bytes: HashMap::new(),
            wasted: a
                .waste
                .iter()
                .filter(|w| w.layer == layer)
                .map(|w| w.node)
                .collect(),
        };
        let Some(l) = a.layers.get(layer) else {
            self.tree = t;
            return;
        };
        for c in &l.changes {
            t.change.insert(c.node, (c.change, c.kind, c.bytes));
            let counted = if c.kind == Kind::Dir && c.change != ChangeKind::Removed {
                0
            } else {
                c.bytes
            };
            let mut n = c.node;
            *t.bytes.entry(n).or_default() += counted;
            while let Some(p) = a.tree.parent(n) {
                let kids = t.children.entry(p).or_default();
                let new = !kids.contains(&n);
                if new {
                    kids.push(n);
                }
                *t.bytes.entry(p).or_default() += counted;
                if !new && counted == 0 {
                    break;
                }
                n = p;
            }
        }
        for kids in t.children.values_mut() {
            kids.sort_by(|x, y| a.tree.name(*x).cmp(a.tree.name(*y)));
        }
        self.tree = t;
    }

    /// The visible rows of the file tree: node and depth.
    fn rows(&self) -> Vec<(NodeId, usize)> {
        let mut out = Vec::new();
        let mut stack: Vec<(NodeId, usize)> = self
            .tree
            .children
            .get(&kiln_inspect::tree::ROOT)
            .map(|k| k.iter().rev().map(|&n| (n, 0)).collect())
            .unwrap_or_default();
        while let Some((n, d)) = stack.pop() {
            out.push((n, d));
            if self.expanded.contains(&n)
                && let Some(kids) = self.tree.children.get(&n)
            {
                stack.extend(kids.iter().rev().map(|&k| (k, d + 1)));
            }
        }
        out
    }

    /// Acts on `key`; `false` when the browser is done.
    pub(super) fn key(&mut self, key: Key) -> bool {
        let layers = self.report.analysis.layers.len();
        match (key, self.focus) {
            (Key::Quit, _) => return false,
            (Key::Tab | Key::Enter, Pane::Layers) => self.focus = Pane::Files,
            (Key::Tab, Pane::Files) => self.focus = Pane::Layers,
            (Key::Up, Pane::Layers) if self.layer > 0 => self.select(self.layer - 1),
            (Key::Down, Pane::Layers) if self.layer + 1 < layers => self.select(self.layer + 1),
            (Key::Up, Pane::Files) => self.cursor = self.cursor.saturating_sub(1),
            (Key::Down, Pane::Files) => {
                self.cursor = (self.cursor + 1).min(self.rows().len().saturating_sub(1));
            }
            (Key::Enter, Pane::Files) => {
                if let Some(&(n, _)) = self.rows().get(self.cursor)
                    && self.tree.children.contains_key(&n)
                    && !self.expanded.remove(&n)
                {
                    self.expanded.insert(n);
                }
            }
            _ => {}
        }
        true
    }

    fn paint(&self, text: &str, sgr: &str) -> String {
        if self.color && !sgr.is_empty() {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// The screen, `height` lines of `width` columns (escape sequences aside).
    pub(super) fn screen(&mut self, width: usize, height: usize) -> Vec<String> {
        let a = self.report.analysis;
        let width = width.max(20);
        let body = height.saturating_sub(3).max(1);
        let left = (width * 2 / 5).clamp(10, 60);
        let right = width.saturating_sub(left + 3);
        let mut lines = Vec::with_capacity(height);
        lines.push(fit(
            &format!(
                "kiln analyze: {}  {}  {} layers  {} files  wasted {}",
                self.report.name,
                human_size(super::Report::image_size(a)),
                a.layers.len(),
                a.total.files,
                human_size(a.wasted_bytes())
            ),
            width,
        ));
        let title = |t: &str, focused: bool, w: usize| {
            let t = fit(&format!("{}{t}", if focused { "> " } else { "  " }), w);
            if focused { self.paint(&t, "1") } else { t }
        };
        let l = &a.layers[self.layer.min(a.layers.len().saturating_sub(1))];
        lines.push(format!(
            "{} │ {}",
            title("Layers", self.focus == Pane::Layers, left),
            title(
                &format!(
                    "Layer {}: {} (+{} ~{} -{})",
                    self.layer,
                    made_by(self.report, self.layer),
                    l.added.files,
                    l.changed.files,
                    l.removed.files
                ),
                self.focus == Pane::Files,
                right
            )
        ));
        // Keep the selections in view.
        if self.layer < self.layers_top {
            self.layers_top = self.layer;
        } else if self.layer >= self.layers_top + body {
            self.layers_top = self.layer + 1 - body;
        }
        if self.cursor < self.files_top {
            self.files_top = self.cursor;
        } else if self.cursor >= self.files_top + body {
            self.files_top = self.cursor + 1 - body;
        }
        let rows = self.rows();
        for r in 0..body {
            let i = self.layers_top + r;
            let left_text = a.layers.get(i).map_or_else(
                || " ".repeat(left),
                |layer| {
                    let t = fit(
                        &format!(
                            "{}#{i:<3}{:>8}  {}",
                            if i == self.layer { "▶ " } else { "  " },
                            human_size(layer.size),
                            made_by(self.report, i)
                        ),
                        left,
                    );
                    if i == self.layer {
                        self.paint(&t, if self.focus == Pane::Layers { "7" } else { "1" })
                    } else {
                        t
                    }
                },
            );
            let j = self.files_top + r;
            let right_text = rows.get(j).map_or_else(String::new, |&(n, depth)| {
                self.file_row(n, depth, right, j == self.cursor)
            });
            lines.push(format!("{left_text} │ {right_text}"));
        }
        if rows.is_empty()
            && let Some(line) = lines.get_mut(2)
        {
            let left_part = line[..line.find(" │ ").unwrap_or(0)].to_owned();
            *line = format!("{left_part} │ (no files: this layer changes nothing)");
        }
        lines.push(fit(
            "↑/↓ select   tab switch pane   enter open/close directory   q quit   (+ added  ~ changed  - removed)",
            width,
        ));
        lines
    }

    fn file_row(&self, n: NodeId, depth: usize, width: usize, selected: bool) -> String {
        let a = self.report.analysis;
        let change = self.tree.change.get(&n);
        let sign = match change.map(|c| c.0) {
            Some(ChangeKind::Added) => '+',
            Some(ChangeKind::Changed) => '~',
            Some(ChangeKind::Removed) => '-',
            None => ' ',
        };
        let arrow = if self.tree.children.contains_key(&n) {
            if self.expanded.contains(&n) {
                "▾ "
            } else {
                "▸ "
            }
        } else {
            "  "
        };
        let wasted = self.tree.wasted.contains(&n);
        let name = String::from_utf8_lossy(a.tree.name(n));
        let bytes = self.tree.bytes.get(&n).copied().unwrap_or(0);
        let text = fit(
            &format!(
                "{sign} {}{arrow}{name}{}  {}{}",
                "  ".repeat(depth),
                if change.is_some_and(|c| c.1 == Kind::Dir) || self.tree.children.contains_key(&n) {
                    "/"
                } else {
                    ""
                },
                human_size(bytes),
                if wasted { "  wasted" } else { "" }
            ),
            width,
        );
        let sgr = match (
            selected && self.focus == Pane::Files,
            wasted,
            change.map(|c| c.0),
        ) {
            (true, _, _) => "7",
            (false, true, _) => "30;43",
            (false, false, Some(ChangeKind::Added)) => "32",
            (false, false, Some(ChangeKind::Changed)) => "33",
            (false, false, Some(ChangeKind::Removed)) => "31",
            (false, false, None) => "",
        };
        // The selection shows without colour too.
        if selected && self.focus == Pane::Files && !self.color {
            return format!(">{}", fit(&text, width.saturating_sub(1)));
        }
        self.paint(&text, sgr)
    }
}

/// `s` cut or padded to exactly `width` characters.
fn fit(s: &str, width: usize) -> String {
    let mut out: String = s.chars().take(width).collect();
    let n = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width - n));
    out
}

/// The terminal in raw mode on the alternate screen; put back as it was when dropped.
struct Terminal {
    saved: rustix::termios::Termios,
}

impl Terminal {
    fn enter() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin)
            .map_err(|e| anyhow::anyhow!("cannot read the terminal's settings: {e}"))?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .map_err(|e| anyhow::anyhow!("cannot put the terminal in raw mode: {e}"))?;
        let t = Self { saved };
        let mut out = std::io::stdout().lock();
        out.write_all(b"\x1b[?1049h\x1b[?25l")?;
        out.flush()?;
        Ok(t)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[0m\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Runs the browser on the terminal until q.
pub(super) fn run(report: &Report<'_>) -> anyhow::Result<()> {
    for (name, is) in [
        ("stdout", std::io::stdout().is_terminal()),
        ("stdin", std::io::stdin().is_terminal()),
    ] {
        if !is {
            anyhow::bail!(
                "`kiln analyze -i` needs a terminal, and {name} is not one\nhint: run it in a terminal, or write the report with `--format text`, `json` or `html`"
            );
        }
    }
    if report.analysis.layers.is_empty() {
        anyhow::bail!("the image `{}` has no layers to browse", report.name);
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut browser = Browser::new(report, color);
    let _terminal = Terminal::enter()?;
    let mut input = [0u8; 64];
    loop {
        let (w, h) = rustix::termios::tcgetwinsize(std::io::stdout())
            .map_or((80, 24), |s| (usize::from(s.ws_col), usize::from(s.ws_row)));
        let screen = browser.screen(w, h);
        let mut frame = String::from("\x1b[H");
        for (i, line) in screen.iter().enumerate() {
            frame.push_str(line);
            frame.push_str("\x1b[K");
            if i + 1 < screen.len() {
                frame.push_str("\r\n");
            }
        }
        let mut out = std::io::stdout().lock();
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        drop(out);
        let n = std::io::stdin().read(&mut input)?;
        if n == 0 {
            return Ok(());
        }
        for key in keys(&input[..n]) {
            if !browser.key(key) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Key, fit, keys};

    #[test]
    fn terminal_input_becomes_keys() {
        assert_eq!(
            keys(b"\x1b[A\x1b[Bkj\t\rq\x1bOB\x1b[5~x"),
            [
                Key::Up,
                Key::Down,
                Key::Up,
                Key::Down,
                Key::Tab,
                Key::Enter,
                Key::Quit,
                Key::Down
            ]
        );
        assert_eq!(keys(&[3]), [Key::Quit], "ctrl-c quits in raw mode");
    }

    #[test]
    fn lines_fit_their_pane_exactly() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("▶ abcdef", 4), "▶ ab");
    }
}
