//! `kiln login [-u USER] --password-stdin [REGISTRY]` and `kiln logout [REGISTRY]`: Docker's
//! credentials in `config.json` (or its credential helper), checked against the registry
//! before they are stored.

use std::io::Read as _;
use std::process::ExitCode;

use kiln_registry::{Credential, Secret};

use crate::Globals;

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry (`host[:port]`); Docker Hub by default.
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    pub registry: String,
    /// The user name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password (or token) from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry (`host[:port]`); Docker Hub by default.
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    pub registry: String,
}

pub(crate) fn login(globals: &Globals, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let Some(username) = args.username.clone().filter(|u| !u.is_empty()) else {
        anyhow::bail!(
            "`kiln login` needs a user name\nhint: `echo \"$TOKEN\" | kiln login -u USER --password-stdin {}`",
            args.registry
        );
    };
    anyhow::ensure!(
        args.password_stdin,
        "`kiln login` reads the password from stdin only\nhint: `echo \"$TOKEN\" | kiln login -u {username} --password-stdin {}`",
        args.registry
    );
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
    let password = Secret::new(password.trim_end_matches(['\n', '\r']));
    anyhow::ensure!(!password.is_empty(), "the password on stdin is empty");
    let registries = super::pull::registries(globals)?;
    registries
        .login(&args.registry, &Credential::Basic { username, password })
        .map_err(super::pull::hinted)?;
    eprintln!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn logout(globals: &Globals, args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let registries = super::pull::registries(globals)?;
    if registries
        .logout(&args.registry)
        .map_err(super::pull::hinted)?
    {
        eprintln!("Removing login credentials for {}", args.registry);
    } else {
        eprintln!("Not logged in to {}", args.registry);
    }
    Ok(ExitCode::SUCCESS)
}
