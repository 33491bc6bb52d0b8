//! One module per subcommand. Each exposes `Args` (clap) and `run(&Globals, &Args)`.

pub mod build;
pub mod dump;
pub mod fsck;
pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
pub mod outline;
pub mod prune;
pub mod rmi;
pub mod run;
pub mod save;
pub mod tag;
