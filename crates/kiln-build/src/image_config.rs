//! What each metadata instruction does to the image config, and the history entry it
//! leaves, exactly as BuildKit's `dispatch*` functions do (`dockerfile2llb/convert.go`).
//!
//! History `created_by` texts (BuildKit's, kept byte for byte so tools that parse them work):
//! `ENV k=v k2=v2`, `LABEL k=v`, `ARG a=1 b`, `WORKDIR /abs`, `USER u`, `EXPOSE [80/tcp]`,
//! `CMD ["/bin/sh" "-c" "x"]` (Go `%q` of the list), `ENTRYPOINT [...]`, `VOLUME [/a /b]`,
//! `STOPSIGNAL SIGTERM`, `SHELL [/bin/bash -c]`, `MAINTAINER x`,
//! `HEALTHCHECK {Test:[CMD-SHELL x] Interval:5s ...}`, and for steps with a layer
//! `RUN |2 A=1 B=2 /bin/sh -c make # buildkit`, `COPY --chown=1 a b /dst # buildkit`.
//! ONBUILD records its trigger in the config and leaves no history entry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use kiln_frontend::instruction::{Healthcheck, KeyValue};
use kiln_frontend::{CommandKind, Platform, ResolvedArg};
use kiln_oci::config::{ContainerConfig, Empty, RootFs};
use kiln_oci::{History, ImageConfig};
use kiln_syntax::go_quote;

use crate::error::StepError;

/// The `comment` BuildKit puts on every history entry it writes.
pub(crate) const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The default `PATH` of Linux images.
pub(crate) fn default_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// The config of `FROM scratch` for `platform` (BuildKit's `emptyImage`).
pub(crate) fn empty_image(platform: &Platform) -> ImageConfig {
    let mut cfg = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        },
        ..ImageConfig::default()
    };
    cfg.config = Some(ContainerConfig {
        working_dir: Some("/".into()),
        env: Some(vec![format!("PATH={}", default_path())]),
        ..ContainerConfig::default()
    });
    cfg
}

/// Add the default `PATH` when the base image has none (BuildKit does this for every stage).
pub(crate) fn ensure_path(cfg: &mut ImageConfig) {
    let c = cfg.config.get_or_insert_with(ContainerConfig::default);
    let env = c.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.split('=').next() == Some("PATH")) {
        env.push(format!("PATH={}", default_path()));
    }
}

/// Per-stage facts the config rules need beyond the config itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct MetaState {
    /// Whether this stage has set CMD (ENTRYPOINT then keeps it; else it clears the base's).
    pub cmd_set: bool,
}

/// A history entry as BuildKit writes it.
pub(crate) fn history_entry(
    created_by: String,
    empty_layer: bool,
    created: Option<&str>,
) -> History {
    History {
        created: created.map(str::to_owned),
        created_by: Some(created_by),
        author: None,
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer,
    }
}

/// Shell form to exec form: the image's SHELL (default `/bin/sh -c`) plus the joined args.
pub(crate) fn with_shell(cfg: &ImageConfig, args: &[String]) -> Vec<String> {
    let mut shell = cfg
        .config
        .as_ref()
        .and_then(|c| c.shell.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    shell.push(args.join(" "));
    shell
}

/// `RUN` history text: `|N K=V ...` for the stage's declared ARGs (values from the step's
/// environment), then the command, then `# buildkit`.
pub(crate) fn run_created_by(
    args: &[String],
    build_args: &[ResolvedArg],
    env: &[(String, String)],
) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for a in build_args {
        let v = env
            .iter()
            .rev()
            .find(|(k, _)| *k == a.name)
            .map(|(_, v)| v.clone())
            .or_else(|| a.value.clone())
            .unwrap_or_default();
        match pairs.iter_mut().find(|(k, _)| *k == a.name) {
            Some(slot) => slot.1 = v,
            None => pairs.push((a.name.clone(), v)),
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !pairs.is_empty() {
        words.push(format!("|{}", pairs.len()));
        words.extend(pairs.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    format!("RUN {} # buildkit", words.join(" "))
}

/// Apply a metadata instruction (already expanded) to `cfg`; returns its history entry, or
/// `None` for instructions that leave none (ONBUILD) or are not metadata.
///
/// WORKDIR is handled here for the config; creating the directory (a layer) is the caller's.
pub(crate) fn apply_metadata(
    cfg: &mut ImageConfig,
    kind: &CommandKind,
    state: &mut MetaState,
) -> Result<Option<String>, StepError> {
    let shell_form = |cfg: &ImageConfig, line: &kiln_frontend::instruction::CommandLine| {
        if line.prepend_shell {
            with_shell(cfg, &line.args)
        } else {
            line.args.clone()
        }
    };
    let text = match kind {
        CommandKind::Env(kvs) => {
            let c = container(cfg);
            let env = c.env.get_or_insert_with(Vec::new);
            for kv in kvs {
                set_env(env, &kv.key.text, &kv.value.text);
            }
            format!("ENV{}", pairs_text(kvs))
        }
        CommandKind::Label(kvs) => {
            let labels = container(cfg).labels.get_or_insert_with(BTreeMap::new);
            for kv in kvs {
                labels.insert(kv.key.text.clone(), kv.value.text.clone());
            }
            format!("LABEL{}", pairs_text(kvs))
        }
        CommandKind::Arg(decls) => {
            let words: Vec<String> = decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={}", d.key.text, v.text),
                    None => d.key.text.clone(),
                })
                .collect();
            format!("ARG {}", words.join(" "))
        }
        CommandKind::Maintainer(w) => {
            cfg.author = Some(w.text.clone());
            format!("MAINTAINER {}", w.text)
        }
        CommandKind::Workdir(w) => {
            let current = container(cfg).working_dir.clone().unwrap_or_default();
            let wd = normalize_workdir(&current, &w.text);
            container(cfg).working_dir = Some(wd.clone());
            format!("WORKDIR {wd}")
        }
        CommandKind::User(w) => {
            container(cfg).user = Some(w.text.clone());
            format!("USER {}", w.text)
        }
        CommandKind::Expose(ws) => {
            // Sorted as BuildKit's parser sorts the words (as strings: `1234/udp` before
            // `2375`), so the history text lists them in that order.
            let mut specs: Vec<String> = ws.iter().map(|w| w.text.clone()).collect();
            specs.sort();
            let ports = crate::ports::parse_ports(&specs).map_err(StepError::Port)?;
            let exposed = container(cfg)
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in &ports {
                exposed.insert(p.clone(), Empty {});
            }
            format!("EXPOSE [{}]", ports.join(" "))
        }
        CommandKind::Volume(ws) => {
            let vols = container(cfg).volumes.get_or_insert_with(BTreeMap::new);
            for w in ws {
                vols.insert(w.text.clone(), Empty {});
            }
            format!(
                "VOLUME [{}]",
                ws.iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        CommandKind::StopSignal(w) => {
            crate::signal::parse_signal(&w.text).map_err(StepError::Signal)?;
            container(cfg).stop_signal = Some(w.text.clone());
            format!("STOPSIGNAL {}", w.text)
        }
        CommandKind::Shell(words) => {
            container(cfg).shell = Some(words.clone());
            format!("SHELL [{}]", words.join(" "))
        }
        CommandKind::Cmd(line) => {
            let args = shell_form(cfg, line);
            let c = container(cfg);
            c.cmd = Some(args.clone());
            c.args_escaped = Some(true);
            state.cmd_set = true;
            format!("CMD {}", go_list(&args))
        }
        CommandKind::Entrypoint(line) => {
            let args = shell_form(cfg, line);
            let c = container(cfg);
            c.entrypoint = Some(args.clone());
            if !state.cmd_set {
                c.cmd = None;
            }
            format!("ENTRYPOINT {}", go_list(&args))
        }
        CommandKind::Healthcheck(h) => {
            let hc = healthcheck_config(h);
            let text = format!("HEALTHCHECK {}", healthcheck_text(&hc));
            container(cfg).healthcheck = Some(hc);
            text
        }
        CommandKind::Onbuild(o) => {
            container(cfg)
                .on_build
                .get_or_insert_with(Vec::new)
                .push(o.expression.clone());
            return Ok(None);
        }
        CommandKind::Run(_) | CommandKind::Copy(_) | CommandKind::Add(_) | CommandKind::From(_) => {
            return Ok(None);
        }
    };
    Ok(Some(text))
}

fn container(cfg: &mut ImageConfig) -> &mut ContainerConfig {
    cfg.config.get_or_insert_with(ContainerConfig::default)
}

/// Replace `k` in a `K=V` list in place, or append it.
fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

fn pairs_text(kvs: &[KeyValue]) -> String {
    kvs.iter().fold(String::new(), |mut s, kv| {
        let _ = write!(s, " {}={}", kv.key.text, kv.value.text);
        s
    })
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
fn go_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| go_quote(s))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// BuildKit's `NormalizeWorkdir`: a relative path joins the current one; the result is clean.
pub(crate) fn normalize_workdir(current: &str, new: &str) -> String {
    let joined = if new.starts_with('/') {
        new.to_owned()
    } else {
        format!("{}/{new}", if current.is_empty() { "/" } else { current })
    };
    clean_path(&joined)
}

/// Go's `path.Clean("/" + p)`: absolute, no `.`, `..` stopping at the root, no trailing
/// slash.
pub(crate) fn clean_path(p: &str) -> String {
    kiln_context::clean_path(&format!("/{p}"))
}

fn healthcheck_config(h: &Healthcheck) -> kiln_oci::Healthcheck {
    let nanos = |d: &Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match h {
        Healthcheck::None => kiln_oci::Healthcheck {
            test: Some(h.test()),
            ..kiln_oci::Healthcheck::default()
        },
        Healthcheck::Cmd {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
            ..
        } => kiln_oci::Healthcheck {
            test: Some(h.test()),
            interval: Some(nanos(interval)).filter(|n| *n != 0),
            timeout: Some(nanos(timeout)).filter(|n| *n != 0),
            start_period: Some(nanos(start_period)).filter(|n| *n != 0),
            start_interval: Some(nanos(start_interval)).filter(|n| *n != 0),
            retries: Some(i64::from(*retries)).filter(|n| *n != 0),
        },
    }
}

/// Go's `%+v` of BuildKit's `HealthcheckConfig`.
fn healthcheck_text(h: &kiln_oci::Healthcheck) -> String {
    let d = |n: Option<i64>| go_duration(u64::try_from(n.unwrap_or(0)).unwrap_or(0));
    format!(
        "{{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        h.test.as_deref().unwrap_or_default().join(" "),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        d(h.start_interval),
        h.retries.unwrap_or(0)
    )
}

/// Go's `time.Duration.String()` for non-negative durations.
pub(crate) fn go_duration(nanos: u64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, div) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", frac(nanos, div));
    }
    let mut out = String::new();
    let secs_total = nanos / 1_000_000_000;
    let h = secs_total / 3600;
    let m = (secs_total % 3600) / 60;
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let rem = nanos - (h * 3600 + m * 60) * 1_000_000_000;
    let _ = write!(out, "{}s", frac(rem, 1_000_000_000));
    out
}

/// `n / div` with the fraction's trailing zeros dropped, as Go prints it.
fn frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(999), "999ns");
    }

    #[test]
    fn workdir_normalization() {
        assert_eq!(normalize_workdir("", "app"), "/app");
        assert_eq!(normalize_workdir("/a", "b/../c/"), "/a/c");
        assert_eq!(normalize_workdir("/a", "/x/./y"), "/x/y");
    }
}
