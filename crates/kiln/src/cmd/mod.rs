//! One module per subcommand. Each exposes `Args` (clap) and `run(&Globals, &Args)`.

pub(crate) mod analyze;
pub(crate) mod build;
pub(crate) mod diff;
pub(crate) mod doctor;
pub(crate) mod dump;
pub(crate) mod fsck;
pub(crate) mod graph;
pub(crate) mod history;
pub(crate) mod images;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod lint;
pub(crate) mod load;
pub(crate) mod login;
pub(crate) mod outline;
pub(crate) mod prune;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod rmi;
pub(crate) mod run;
pub(crate) mod save;
pub(crate) mod tag;
pub(crate) mod unshare;
