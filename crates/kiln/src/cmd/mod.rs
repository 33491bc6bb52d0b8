//! One module per subcommand. Each exposes `Args` (clap) and `run(&Globals, &Args)`.

pub mod outline;
