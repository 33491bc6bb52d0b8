//! `kiln build`: a Dockerfile and a context to an image, with `docker build`'s flags.

mod cache;
mod on_error;
mod registry;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kiln_build::{BuildRequest, Output, parse_output};
use kiln_oci::{MediaTypes, Reference, SaveFormat, Store};
use kiln_sandbox::{Launcher, Network};

use crate::Globals;
use crate::cmd::outline::{DockerfileSource, Loaded, load_plan};
use crate::progress::{self, Mode};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Dockerfile (default: `CONTEXT/Dockerfile`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// Name the image `NAME[:TAG]` (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tag: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Set a build-time variable; `K` alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_arg: Vec<String>,
    /// Set a label on the image.
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Do not use the build cache (every step runs; the results are still recorded).
    #[arg(long)]
    pub no_cache: bool,
    /// Use a build cache (repeatable, tried in order): `type=registry,ref=REF`,
    /// `type=local,src=DIR[,tag=T]` (an export of `--cache-to`), or an image whose config
    /// carries an inline cache. Imported lazily: a layer is fetched only when its step hits.
    #[arg(long, value_name = "SPEC", value_parser = parse_cache_from_arg)]
    pub cache_from: Vec<kiln_build::CacheImport>,
    /// Export this build's cache (repeatable): `type=registry,ref=REF` or
    /// `type=local,dest=DIR[,tag=T]`, with `mode=min|max`, `compression=gzip|zstd`,
    /// `image-manifest=true|false`, `mounts=true` (RUN cache mounts too), `ignore-error=true`;
    /// or `type=inline` (the records in the image's config).
    #[arg(long, value_name = "SPEC", value_parser = parse_cache_to_arg)]
    pub cache_to: Vec<kiln_build::CacheExport>,
    /// When to ask registries for the build's images: `missing` (the default: only images the
    /// store lacks, so offline rebuilds work), `always` (`--pull` alone: fetch what changed
    /// upstream) or `never` (the store only).
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, require_equals = true, default_value = "missing", default_missing_value = "always")]
    pub pull: registry::PullPolicy,
    /// Push the image to its registry under every `-t` name (as `-o type=registry`).
    #[arg(long)]
    pub push: bool,
    /// Do not use the build cache for this stage (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Network for RUN steps.
    #[arg(long, value_enum, default_value_t = NetworkArg::Host)]
    pub network: NetworkArg,
    /// The target platform; only the machine's own is supported.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// How progress is shown.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub progress: Mode,
    /// Where the result goes: `type=image|registry|oci|docker|tar|local[,dest=...][,name=...]`
    /// (`type=registry`, or `type=image,push=true`, pushes; with `compression=`), a
    /// directory, or `-` (repeatable; default: the store).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Vec<String>,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (digests, names) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Build nothing: say for every step whether it is cached or why it would run.
    #[arg(long)]
    pub explain: bool,
    /// Build nothing: run the build checks (as `kiln lint`) and print what they find; the
    /// status is 1 when they find anything, as `docker build --check`'s is.
    #[arg(long, conflicts_with = "explain")]
    pub check: bool,
    /// After the build, print the image's analysis on stdout (after its id), as `kiln
    /// analyze -f` does, with what each stage gave the final image.
    #[arg(long, conflicts_with_all = ["explain", "check"])]
    pub analyze: bool,
    /// When a RUN fails, keep its filesystem (what it changed over the layers below, and its
    /// sandbox spec) under the store's `failed-steps/` for a look inside; `kiln prune --all`
    /// removes them.
    #[arg(long)]
    pub keep_failed: bool,
    /// What to do when a RUN fails, besides failing: `shell` opens `/bin/sh` in the failed
    /// step (its filesystem with the command's changes, its user, workdir, environment and
    /// mounts; secrets only with `shell,secrets`) when stdin and stdout are a terminal;
    /// `keep` keeps its filesystem as the image `kiln-failed/<stage>:<step>` for `kiln run`;
    /// `shell,keep` both; `fail` (the default) nothing.
    #[arg(long, value_name = "MODE", value_parser = on_error::parse, default_value = "fail", conflicts_with_all = ["explain", "check"])]
    pub on_error: on_error::OnError,
    /// How `--explain` reports: `text` (progress lines and a summary on stderr) or `json`
    /// (one document on stdout). Only with `--explain`.
    #[arg(long, value_enum, requires = "explain", default_value_t = crate::cmd::outline::Format::Text)]
    pub format: crate::cmd::outline::Format,
    /// Draw the stages this build ran to FILE, each with its steps' times and how they ended
    /// (cached, done, failed), over the stage graph as `kiln graph` draws it: Graphviz DOT for
    /// `.dot`/`.gv`, Mermaid for `.mmd`, JSON for `.json`, text for `.txt`. Written when the
    /// build fails too.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["explain", "check"])]
    pub graph: Option<PathBuf>,
    /// After the build, write its report to FILE as one self-contained HTML page (no network,
    /// no external scripts) for a CI job to keep: the stage graph with each stage's time and
    /// size, the layers coloured by instruction, a treemap of the image by directory, the
    /// wasted files with their fixes (as `kiln analyze --format html`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["explain", "check"])]
    pub report: Option<PathBuf>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`
    /// (repeatable). Its bytes never reach the image, its history or the logs.
    #[arg(long, value_name = "id=ID,src=FILE|env=VAR", value_parser = parse_secret_arg)]
    pub secret: Vec<kiln_build::Secret>,
    /// The build context: a directory, a tarball, or `-` (a tarball or a Dockerfile on stdin).
    #[arg(value_name = "CONTEXT")]
    pub context: String,
}

/// `--network` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NetworkArg {
    /// The host's network (the default).
    Host,
    /// No network.
    None,
    /// The builder's default: host.
    Default,
}

pub(crate) fn run(globals: &Globals, args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(g) = &args.graph {
        crate::graph::GraphFormat::for_file(g)?;
    }
    let store = Store::open(&globals.root)?;
    let outputs = args
        .output
        .iter()
        .map(|o| parse_output(o).map_err(|e| anyhow::anyhow!("invalid `--output {o}`: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut names: Vec<String> = args.tag.clone();
    for o in &outputs {
        if let Output::Image { names: n, .. } = o {
            names.extend(n.iter().cloned());
        }
    }
    let tags = names
        .iter()
        .map(|n| Reference::parse(n).map_err(|e| anyhow::anyhow!("invalid tag `{n}`: {e}\nhint: tags look like `name`, `name:tag` or `registry/name:tag`")))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let scratch = store.layout().tmp_unique("context");
    let result = build_in(&store, globals, args, &outputs, &tags, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn build_in(
    store: &Store,
    globals: &Globals,
    args: &Args,
    outputs: &[Output],
    tags: &[Reference],
    scratch: &Path,
) -> anyhow::Result<ExitCode> {
    let ctx = kiln_build::prepare_context(&args.context, &mut std::io::stdin().lock(), scratch)?;
    let dockerfile_path = args
        .dockerfile
        .clone()
        .unwrap_or_else(|| crate::cmd::outline::default_dockerfile(&ctx.dir));
    let src = match &ctx.dockerfile {
        Some(text) => DockerfileSource {
            path: PathBuf::from("<stdin>"),
            text: text.clone(),
        },
        None => crate::cmd::outline::read_dockerfile(Some(&dockerfile_path), &ctx.dir)?,
    };
    let opts = crate::cmd::outline::build_options(
        args.target.as_ref(),
        &args.build_arg,
        args.platform.as_ref(),
    )?;
    let images = crate::cmd::lint::StoreImages(store);
    let ignore = kiln_context::IgnoreRules::for_build(&ctx.dir, &dockerfile_path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.check {
        let context = crate::cmd::lint::context_summary(&ctx.dir, &ignore);
        let findings = crate::cmd::lint::check_dockerfile(
            &src,
            &opts,
            &ignore,
            context.as_ref(),
            Some(&images),
        )?;
        crate::cmd::lint::print(&src, &findings, crate::cmd::lint::LintFormat::Text)?;
        let clean = findings.warnings.is_empty() && findings.error.is_none();
        return Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let checks = crate::cmd::outline::Checks {
        ignore: Some(&ignore),
        images: Some(&images),
    };
    let Loaded { plan, warnings } = load_plan(&src, &opts, checks)?;
    let labels = args
        .label
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("invalid `--label {l}`: expected `KEY=VALUE`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let launcher = Launcher::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the kiln binary to run steps: {e}"))?;
    let mode = if args.quiet {
        Mode::Quiet
    } else {
        args.progress
    };
    let reporter = progress::Timings::new(progress::reporter(mode));
    // The debug shell needs the terminal; without one, the failure says why there is none.
    let no_terminal = if args.on_error.shell {
        on_error::no_terminal()
    } else {
        None
    };
    let shell = (args.on_error.shell && no_terminal.is_none())
        .then(|| on_error::Shell::new(&launcher, args.on_error.secrets, &reporter));
    let cache = kiln_cache::Cache::open(store).map_err(|e| {
        anyhow::anyhow!("cannot open the build cache: {e}\nhint: `kiln prune --all` resets it")
    })?;
    let registries = registry::LazyRegistries::new(globals);
    let resolver = registry::RegistryResolver {
        store,
        registries: &registries,
        policy: args.pull,
        platform: kiln_oci::model::Platform {
            architecture: opts.target_platform.architecture.clone(),
            os: opts.target_platform.os.clone(),
            variant: (!opts.target_platform.variant.is_empty())
                .then(|| opts.target_platform.variant.clone()),
            extra: std::collections::BTreeMap::new(),
        },
        quiet: args.quiet,
        // With a remote cache, steps are expected to hit, and a hit needs its base image's
        // blobs but not its files: they are unpacked when a step first uses them, if ever.
        unpack: args.cache_from.is_empty(),
        resolved: std::sync::Mutex::new(Vec::new()),
    };
    let remote = |reference: &str| registry::RegistryRemote::open(registries.get()?, reference);
    let cache_image = |name: &str| {
        kiln_build::ImageResolver::resolve(&resolver, name).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let imported = cache::import(&cache, &args.cache_from, &remote, &cache_image, args.quiet)?;
    let cache_use = kiln_build::CacheUse {
        cache: &cache,
        no_cache: args.no_cache,
        no_cache_stages: args
            .no_cache_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        dockerfile: if ctx.dockerfile.is_some() {
            format!("-:{}", ctx.dir.display())
        } else {
            std::path::absolute(&dockerfile_path)
                .unwrap_or_else(|_| dockerfile_path.clone())
                .display()
                .to_string()
        },
        remote: Some(&imported),
        inline: args.cache_to.iter().any(|c| c.location.is_none()),
    };
    let fetcher = crate::http_client()?;
    let req = BuildRequest {
        cache: Some(&cache_use),
        keep_failed: args.keep_failed || args.on_error.keep,
        on_run_failure: shell.as_ref().map(|s| s as &dyn kiln_build::OnRunFailure),
        store,
        resolver: &resolver,
        fetcher: &fetcher,
        plan: &plan,
        context: &ctx.dir,
        ignore: &ignore,
        build_args: &opts.build_args,
        platform: &opts.target_platform,
        labels: &labels,
        tags,
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host | NetworkArg::Default => Network::Host,
        },
        sandbox: &launcher,
        media: MediaTypes::Oci,
        source_date_epoch: source_date_epoch(&plan, &opts.build_args)?,
        reporter: &reporter,
        secrets: &args.secret,
        snapshotter: globals.snapshotter(store),
    };
    // A local export goes into an empty directory only, checked before anything is built:
    // writing over what is there could follow its links out of it. (BuildKit's local exporter
    // writes over existing files.)
    for o in outputs {
        if let Output::Local { dest } = o
            && std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some())
        {
            anyhow::bail!(
                "cannot export to `{}`: the directory is not empty\nhint: remove it first, or give `-o type=local,dest=` a new directory",
                dest.display()
            );
        }
    }
    if args.explain {
        let explained = kiln_build::explain(&req);
        drop(reporter);
        let explained = explained.map_err(|e| src.error(e.to_diagnostic()))?;
        match args.format {
            crate::cmd::outline::Format::Text => {
                eprintln!("{}", crate::explanation::summary(&explained));
            }
            crate::cmd::outline::Format::Json => {
                let doc = crate::explanation::to_json(&src, &explained, &warnings);
                outln!("{}", serde_json::to_string_pretty(&doc)?)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = kiln_build::build(&req);
    let runs = reporter.runs();
    let opened = shell.as_ref().is_some_and(on_error::Shell::opened);
    drop(reporter);
    if let Some(file) = &args.graph {
        let written = write_graph(file, &plan, &src, &runs);
        match (&outcome, written) {
            (_, Ok(())) => {}
            (Ok(_), Err(e)) => return Err(e),
            // The build's error is the one to report; the graph's is a warning beside it.
            (Err(_), Err(e)) => eprintln!("warning: {e:#}"),
        }
    }
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(failed(store, args, &src, e, no_terminal, opened)),
    };
    for o in outputs {
        export(store, &outcome, o, tags)?;
    }
    let mut pushed = None;
    for (reference, compression) in pushes(args, outputs, tags)? {
        let digest = registry::push(
            store,
            registries.get()?,
            &outcome.manifest,
            &reference,
            compression,
            args.quiet,
        )?;
        pushed.get_or_insert(digest);
    }
    let id = outcome.id.to_string();
    if let Some(f) = &args.iidfile {
        std::fs::write(f, &id)?;
    }
    if let Some(f) = &args.metadata_file {
        // What each image name resolved to, by digest, as BuildKit's provenance records it.
        let images: serde_json::Map<String, serde_json::Value> = resolver
            .resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(n, d)| (n.clone(), d.to_string().into()))
            .collect();
        let meta = serde_json::json!({
            "containerimage.config.digest": id,
            "containerimage.digest": pushed.as_ref().unwrap_or(&outcome.manifest.digest).to_string(),
            "image.name": tags.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "kiln.resolved-images": images,
        });
        std::fs::write(f, serde_json::to_vec_pretty(&meta)?)?;
    }
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    cache::export(
        &cache,
        &outcome,
        &args.cache_to,
        &imported,
        &remote,
        args.quiet,
    )?;
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        // Sizes as `kiln images` shows them, now that every stage's layers are in the store.
        let size = |layers: &mut dyn Iterator<Item = &kiln_oci::model::Descriptor>| {
            layers
                .map(|l| store.layer_size(&l.digest))
                .sum::<Result<u64, _>>()
        };
        let total = size(&mut outcome.layers.iter().map(|l| &l.descriptor))?;
        let _ = writeln!(
            err,
            "built {} ({})",
            &id,
            crate::cmd::images::human_size(total)
        );
        for t in tags {
            let _ = writeln!(err, "  tagged {t}");
        }
        for s in &outcome.stages {
            let _ = writeln!(
                err,
                "  stage {:<16} {:>3} layers {:>9}  ({} over its base)",
                s.name,
                s.layers.len(),
                crate::cmd::images::human_size(size(&mut s.layers.iter())?),
                crate::cmd::images::human_size(size(&mut s.layers[s.base_layers..].iter())?)
            );
        }
    }
    outln!("{id}")?;
    if let Some(file) = &args.report {
        crate::cmd::analyze::report_after_build(
            store,
            &outcome,
            &src,
            args.target.as_deref(),
            &plan,
            &runs,
            file,
        )?;
    }
    if args.analyze {
        return crate::cmd::analyze::after_build(store, &outcome, &src, args.target.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}

/// The build's error, after `--on-error` did what it could: the failed RUN kept as an
/// image (named in the error's hint), or why no shell was opened.
fn failed(
    store: &Store,
    args: &Args,
    src: &DockerfileSource,
    mut e: kiln_build::BuildError,
    no_terminal: Option<&str>,
    opened: bool,
) -> anyhow::Error {
    let mut notes = Vec::new();
    if args.on_error.shell && !opened {
        let why = no_terminal.unwrap_or("the step that failed is not a RUN");
        eprintln!("kiln: `--on-error=shell`: cannot open a shell in the failed step: {why}");
        if no_terminal.is_some() {
            notes.push(
                "run the build in a terminal for the shell, or keep the failed step with `--on-error=keep` and open one with `kiln run -it kiln-failed/<stage>:<step> sh`".to_owned(),
            );
        }
    }
    if args.on_error.keep {
        if let kiln_build::StepError::RunFailed {
            command,
            code,
            kept,
        } = &mut *e.error
        {
            match kept.as_deref() {
                Some(k) => match on_error::keep_image(store, k, command, *code) {
                    Ok(name) => notes.push(format!(
                        "the failed step is kept as the image `{name}`: `kiln run -it {name} sh` looks inside, `kiln rmi {name}` removes it",
                        name = name.familiar()
                    )),
                    Err(err) => eprintln!("warning: {err:#}"),
                },
                None => eprintln!("warning: `--on-error=keep`: the failed step was not kept"),
            }
            if !args.keep_failed {
                // Its image has it now: the kept directory goes, and the error does not name it.
                if let Some(k) = kept.take() {
                    let _ = std::fs::remove_dir_all(&k.dir);
                }
            }
        } else {
            eprintln!(
                "kiln: `--on-error=keep`: the step that failed is not a RUN; there is nothing to keep"
            );
        }
    }
    let mut diagnostic = e.to_diagnostic();
    for n in notes {
        diagnostic.hint = Some(match diagnostic.hint.take() {
            Some(h) => format!("{h}\n{n}"),
            None => n,
        });
    }
    src.error(diagnostic).into()
}

/// `--graph FILE`: the plan's graph with what each stage's steps did, in the format the
/// file's name asks for.
fn write_graph(
    file: &Path,
    plan: &kiln_frontend::Plan,
    src: &DockerfileSource,
    runs: &std::collections::BTreeMap<String, crate::graph::StageRun>,
) -> anyhow::Result<()> {
    let format = crate::graph::GraphFormat::for_file(file)?;
    let doc = crate::graph::GraphDoc::new(plan, src, runs);
    std::fs::write(file, doc.render(format)?)
        .map_err(|e| anyhow::anyhow!("cannot write the build graph `{}`: {e}", file.display()))
}

/// `--cache-from`, checked when the arguments are read.
fn parse_cache_from_arg(spec: &str) -> Result<kiln_build::CacheImport, String> {
    kiln_build::parse_cache_from(spec).map_err(|e| {
        format!("{e}\nhint: write `type=registry,ref=REF`, `type=local,src=DIR` or an image name")
    })
}

/// `--cache-to`, checked when the arguments are read.
fn parse_cache_to_arg(spec: &str) -> Result<kiln_build::CacheExport, String> {
    kiln_build::parse_cache_to(spec).map_err(|e| {
        format!(
            "{e}\nhint: write `type=registry,ref=REF`, `type=local,dest=DIR` or `type=inline`, optionally with `mode=min|max`, `compression=gzip|zstd|uncompressed`, `image-manifest=true|false`, `mounts=true`"
        )
    })
}

/// Where the image is pushed: every `-t` name for `--push`, and each pushing output's names
/// (the `-t` names when it has none), each once, with that output's compression.
fn pushes(
    args: &Args,
    outputs: &[Output],
    tags: &[Reference],
) -> anyhow::Result<Vec<(Reference, kiln_oci::store::ExportCompression)>> {
    let mut out: Vec<(Reference, kiln_oci::store::ExportCompression)> = Vec::new();
    let mut add = |names: &[Reference], compression| {
        for n in names {
            if !out.iter().any(|(r, _)| r == n) {
                out.push((n.clone(), compression));
            }
        }
    };
    if args.push {
        add(tags, kiln_oci::store::ExportCompression::default());
    }
    for o in outputs {
        if let Output::Image {
            names,
            push: Some(compression),
        } = o
        {
            let names = if names.is_empty() {
                tags.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| Reference::parse(n))
                    .collect::<Result<Vec<_>, _>>()?
            };
            add(&names, *compression);
        }
    }
    let asked = args.push
        || outputs
            .iter()
            .any(|o| matches!(o, Output::Image { push: Some(_), .. }));
    if asked && out.is_empty() {
        anyhow::bail!(
            "nothing to push to: the image has no name\nhint: name it with `-t registry/name:tag` (or `-o type=registry,name=registry/name:tag`)"
        );
    }
    Ok(out)
}

/// Write one `--output`.
fn export(
    store: &Store,
    outcome: &kiln_build::BuildOutcome,
    output: &Output,
    tags: &[Reference],
) -> anyhow::Result<()> {
    match output {
        // Pushed after every output is written (`pushes`).
        Output::Image { .. } => Ok(()),
        Output::Oci { dest, .. } | Output::Docker { dest } => {
            let (format, compression) = match output {
                Output::Oci { compression, .. } => (SaveFormat::Oci, *compression),
                _ => (
                    SaveFormat::Docker,
                    kiln_oci::store::ExportCompression::default(),
                ),
            };
            let image = store.resolve(&outcome.manifest.digest.to_string())?;
            crate::cmd::save::write_archive(
                store,
                &[(image, tags.to_vec())],
                format,
                compression,
                dest.as_deref(),
            )
        }
        Output::Tar { dest } => {
            let tmp = store.layout().tmp_unique("export");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)?;
            let lowers: Vec<PathBuf> = outcome
                .layers
                .iter()
                .rev()
                .map(|l| l.snapshot.clone())
                .collect();
            kiln_oci::snapshot::shares::separate(&lowers)?;
            kiln_layer::overlay::copy_merged(&lowers, &tmp)?;
            let opts = kiln_layer::PackOptions {
                compression: kiln_layer::Compression::None,
                source_date_epoch: None,
            };
            let result = if let Some(d) = dest {
                let part = d.with_extension("kiln-partial");
                let out = std::io::BufWriter::new(std::fs::File::create(&part)?);
                let (mut w, _) = kiln_layer::pack_dir(&tmp, out, &opts)?;
                w.flush()?;
                std::fs::rename(&part, d)?;
                Ok(())
            } else {
                let stdout = std::io::BufWriter::new(std::io::stdout().lock());
                let (mut w, _) = kiln_layer::pack_dir(&tmp, stdout, &opts)?;
                w.flush().map_err(anyhow::Error::from)
            };
            let _ = std::fs::remove_dir_all(&tmp);
            result
        }
        Output::Local { dest } => {
            let lowers =
                kiln_layer::overlay::unique_stack(outcome.layers.iter().rev().map(|l| &l.snapshot));
            std::fs::create_dir_all(dest)?;
            kiln_oci::snapshot::shares::separate(&lowers)?;
            kiln_layer::overlay::copy_merged(&lowers, dest)?;
            Ok(())
        }
    }
}

/// `--secret`, checked before the build starts: a file secret must be readable.
fn parse_secret_arg(spec: &str) -> Result<kiln_build::Secret, String> {
    let secret = kiln_build::parse_secret(spec).map_err(|e| kiln_build::one_line(&e))?;
    if let kiln_build::SecretSource::File(path) = &secret.source {
        std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    }
    Ok(secret)
}

/// `SOURCE_DATE_EPOCH` as BuildKit takes it: a `--build-arg SOURCE_DATE_EPOCH=N` (which is how
/// buildx passes it) or a global `ARG SOURCE_DATE_EPOCH=N` default, else the environment
/// variable. A build arg that is not a whole number is an error naming it.
fn source_date_epoch(
    plan: &kiln_frontend::Plan,
    build_args: &[(String, String)],
) -> anyhow::Result<Option<i64>> {
    let from_args = build_args
        .iter()
        .rev()
        .find(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .map(|(_, v)| v.as_str())
        .or_else(|| {
            plan.global_args
                .iter()
                .find(|a| a.name == "SOURCE_DATE_EPOCH")
                .and_then(|a| a.value.as_deref())
        })
        .filter(|v| !v.is_empty());
    match from_args {
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "invalid SOURCE_DATE_EPOCH `{v}`\nhint: give the seconds since 1970-01-01 UTC, as `--build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`"
            )
        }),
        None => Ok(crate::source_date_epoch_from_env()),
    }
}
