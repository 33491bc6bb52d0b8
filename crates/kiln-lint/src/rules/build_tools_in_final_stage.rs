//! `BuildToolsInFinalStage` (KL002): the image keeps compilers, `-dev` packages or other
//! build tools that it does not run.

use kiln_syntax::TextRange;

use crate::CheckConfig;
use crate::rule::declare_rule;
use crate::script::{SimpleCommand, package_install};
use crate::sink::Sink;

declare_rule! {
    /// ## What it does
    /// Flags a `RUN`, in the final stage or a stage it is built on, that installs build
    /// tools through `apt-get`/`apt`, `apk` or `yum`/`dnf`/`microdnf`: compilers and build
    /// systems (`build-essential`, `build-base`, `alpine-sdk`, `gcc`, `g++`, `clang`, `make`,
    /// `cmake`, `golang`, `rustc`, `cargo`, `maven`, `gradle` ...), JDKs, and header packages
    /// (`-dev`, `-devel`). It stays quiet when the same RUN removes packages again
    /// (`apt-get purge|remove|autoremove`, `apk del`, `yum|dnf remove`: the
    /// `apk add --virtual .build-deps ... && apk del .build-deps` pattern), and for a tool
    /// the image runs (the program of its `ENTRYPOINT` or `CMD`).
    ///
    /// ## Why is this bad?
    /// A toolchain is needed to build the program, not to run it. In the image it is hundreds
    /// of megabytes that every pull transfers, and a larger attack surface (a compiler
    /// in a compromised container is a gift). This is what multi-stage builds are for: build
    /// in one stage, copy the result into a slim one.
    ///
    /// ## Example
    /// ```dockerfile
    /// FROM debian:bookworm-slim
    /// RUN apt-get update && apt-get install -y build-essential libssl-dev
    /// COPY . /src
    /// RUN make -C /src install
    /// CMD ["/usr/local/bin/app"]
    /// ```
    ///
    /// Use instead:
    /// ```dockerfile
    /// FROM debian:bookworm-slim AS build
    /// RUN apt-get update && apt-get install -y build-essential libssl-dev
    /// COPY . /src
    /// RUN make -C /src install
    ///
    /// FROM debian:bookworm-slim
    /// RUN apt-get update && apt-get install -y libssl3 && rm -rf /var/lib/apt/lists/*
    /// COPY --from=build /usr/local/bin/app /usr/local/bin/app
    /// CMD ["/usr/local/bin/app"]
    /// ```
    code: "KL002",
    name: "BuildToolsInFinalStage",
    description: "The final image should not keep build toolchains it does not run",
    hadolint: [],
}

/// Packages that are build tools, by exact name.
const TOOLS: [&str; 22] = [
    "build-essential",
    "build-base",
    "alpine-sdk",
    "gcc",
    "g++",
    "gcc-c++",
    "clang",
    "llvm",
    "make",
    "cmake",
    "automake",
    "autoconf",
    "libtool",
    "pkg-config",
    "pkgconf",
    "golang",
    "golang-go",
    "go",
    "rustc",
    "cargo",
    "maven",
    "gradle",
];

/// Whether the package `name` (a version after `=` left out) is a build tool.
fn is_tool(name: &str) -> bool {
    let name = name.split('=').next().unwrap_or(name);
    TOOLS.contains(&name)
        || name.ends_with("-dev")
        || name.ends_with("-devel")
        || (name.starts_with("openjdk") && name.contains("-jdk"))
        || name.starts_with("gcc-")
        || name.starts_with("g++-")
        || name.starts_with("clang-")
}

/// Check the commands of the RUN at `span`; `runs` are the programs the image's ENTRYPOINT
/// and CMD start.
pub(crate) fn check(
    sink: &mut Sink,
    config: &CheckConfig,
    commands: &[SimpleCommand],
    runs: &[String],
    span: TextRange,
) {
    let removes = commands.iter().any(|c| match c.program() {
        "apt-get" | "apt" => c.subcommand_is(&["purge", "remove", "autoremove"]),
        "apk" => c.subcommand_is(&["del"]),
        "yum" | "dnf" | "microdnf" => c.subcommand_is(&["remove", "erase", "autoremove"]),
        _ => false,
    });
    if removes {
        return;
    }
    let tools: Vec<String> = commands
        .iter()
        .filter_map(package_install)
        .flat_map(|(_, packages)| packages)
        .filter(|p| is_tool(p) && !runs.iter().any(|r| r == p))
        .map(|p| format!("`{p}`"))
        .collect();
    if tools.is_empty() {
        return;
    }
    sink.finding(
        config,
        &RULE,
        None,
        span,
        format!(
            "the image keeps the build tools {} installed here",
            tools.join(", ")
        ),
        Some(
            "build in an earlier stage and `COPY --from` only its output into the final one"
                .to_owned(),
        ),
    );
}
