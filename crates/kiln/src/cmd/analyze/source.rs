//! Which Dockerfile instruction made each history entry of an image kiln built.
//!
//! Images carry no file or line: a history entry holds BuildKit's `created_by` text
//! (`RUN |1 V=2 /bin/sh -c make # buildkit`, `COPY a b /dst # buildkit`), kept byte for byte
//! so that other tools read it. So the entries are matched to the instructions of the target
//! stage and the stages it is built on, in order: an entry takes the next instruction of the
//! same keyword whose arguments its text ends with (the text after variable expansion can
//! differ, so failing that, the next instruction of the same keyword). Entries from a base
//! image match nothing.

use kiln_syntax::Dockerfile;

/// One instruction that can make a history entry.
#[derive(Clone, Debug)]
pub(crate) struct SourceInstruction {
    /// 1-based line.
    pub line: usize,
    /// The keyword, uppercase.
    pub keyword: String,
    /// The logical line as written.
    pub original: String,
    /// The arguments joined by spaces (what a `created_by` ends with).
    pub args: String,
    /// The stage's name (or its index when it has none).
    pub stage: String,
    /// `COPY --from=` / `ADD --from=`: the stage or image it copies from.
    pub from: Option<String>,
}

/// A stage: its name or index, its base, its instructions.
struct Stage {
    name: Option<String>,
    base: String,
    instructions: Vec<SourceInstruction>,
}

fn stages(df: &Dockerfile) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    for ins in &df.instructions {
        let keyword = ins.keyword.text.to_ascii_uppercase();
        if keyword == "FROM" {
            let base = ins.args.first().map(|w| w.text.clone()).unwrap_or_default();
            let name = match ins.args.get(1) {
                Some(w) if w.text.eq_ignore_ascii_case("as") => {
                    ins.args.get(2).map(|w| w.text.to_ascii_lowercase())
                }
                _ => None,
            };
            out.push(Stage {
                name,
                base,
                instructions: Vec::new(),
            });
            continue;
        }
        // ARGs before the first FROM make no history entry, nor does ONBUILD.
        if out.is_empty() || keyword == "ONBUILD" {
            continue;
        }
        let index = out.len() - 1;
        let stage = out[index].name.clone().unwrap_or_else(|| index.to_string());
        let from = ins
            .flags
            .iter()
            .find_map(|f| f.text.strip_prefix("--from=").map(str::to_owned));
        let args = ins
            .args
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        out[index].instructions.push(SourceInstruction {
            line: ins.start_line,
            keyword,
            original: ins.original.clone(),
            args,
            stage,
            from,
        });
    }
    out
}

/// The instructions of `target` (a stage name or index; the last stage when `None`) and
/// of the stages it is built on, base first.
pub(crate) fn chain(df: &Dockerfile, target: Option<&str>) -> Vec<SourceInstruction> {
    let stages = stages(df);
    let Some(mut at) = (match target {
        Some(t) => find_stage(&stages, t, stages.len()),
        None => stages.len().checked_sub(1),
    }) else {
        return Vec::new();
    };
    let mut order = vec![at];
    while let Some(base) = find_stage(&stages, &stages[at].base, at) {
        if order.contains(&base) {
            break;
        }
        order.push(base);
        at = base;
    }
    order
        .into_iter()
        .rev()
        .flat_map(|i| stages[i].instructions.clone())
        .collect()
}

/// The stage `name` names among the first `before` stages (by name, or by index).
fn find_stage(stages: &[Stage], name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    stages[..before.min(stages.len())]
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
        .or_else(|| name.parse().ok().filter(|&i: &usize| i < before))
}

/// Whitespace runs collapsed to one space.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The keyword of a `created_by` text and what follows it, without ` # buildkit`.
fn split_created_by(created_by: &str) -> (String, String) {
    let text = created_by
        .trim()
        .strip_suffix("# buildkit")
        .unwrap_or(created_by)
        .trim();
    let (kw, rest) = text.split_once(' ').unwrap_or((text, ""));
    (kw.to_ascii_uppercase(), squash(rest))
}

/// For each `created_by` (in history order), the index in `instructions` of the one that
/// made it.
pub(crate) fn match_history(
    instructions: &[SourceInstruction],
    created_by: &[&str],
) -> Vec<Option<usize>> {
    let mut cursor = 0;
    created_by
        .iter()
        .map(|text| {
            let (kw, rest) = split_created_by(text);
            let candidates = || {
                instructions
                    .iter()
                    .enumerate()
                    .skip(cursor)
                    .filter(|(_, i)| i.keyword == kw)
            };
            let found = candidates()
                .find(|(_, i)| {
                    let args = squash(&i.args);
                    !args.is_empty() && rest.ends_with(&args)
                })
                .or_else(|| candidates().next())
                .map(|(n, _)| n);
            if let Some(n) = found {
                cursor = n + 1;
            }
            found
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_entries_find_their_lines_along_the_target_chain() {
        let df = kiln_syntax::parse(
            "FROM busybox AS build\nRUN echo a > /a\nRUN echo b > /b\n\nFROM busybox AS other\nRUN echo b > /b\n\nFROM build AS final\nARG V=1\nRUN echo $V\nCOPY --from=other /b /c\n",
        )
        .unwrap();
        let chain = chain(&df, None);
        let lines: Vec<usize> = chain.iter().map(|i| i.line).collect();
        assert_eq!(
            lines,
            vec![2, 3, 9, 10, 11],
            "the `other` stage is not in the chain"
        );
        let history = [
            "/bin/sh -c #(nop) ADD file:abc in /",
            "RUN /bin/sh -c echo a > /a # buildkit",
            "RUN /bin/sh -c echo b > /b # buildkit",
            "ARG V=1",
            "RUN |1 V=1 /bin/sh -c echo $V # buildkit",
            "COPY /b /c # buildkit",
        ];
        let m = match_history(&chain, &history);
        let lines: Vec<Option<usize>> = m.iter().map(|i| i.map(|i| chain[i].line)).collect();
        assert_eq!(
            lines,
            vec![None, Some(2), Some(3), Some(9), Some(10), Some(11)]
        );
        assert_eq!(chain[4].from.as_deref(), Some("other"));
        assert_eq!(chain[0].stage, "build");
        let other = super::chain(&df, Some("other"));
        assert_eq!(other.iter().map(|i| i.line).collect::<Vec<_>>(), vec![6]);
    }
}
