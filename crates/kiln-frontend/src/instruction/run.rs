//! RUN: the command line, heredoc files, and the `--mount`, `--network`, `--security` and
//! `--device` flags.

use kiln_syntax::Word;

use super::run_mount::{Mount, parse_mount};
use super::{CommandLine, Request};
use crate::error::{ErrorKind, InstructionError};
use crate::flags::FlagKind;

/// `RUN --network`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// The builder's default (host networking in kiln, as in BuildKit here).
    #[default]
    Default,
    /// No network at all.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityMode {
    /// The default sandbox.
    #[default]
    Sandbox,
    /// All capabilities (needs the builder to allow it).
    Insecure,
}

/// A `RUN --device` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device name.
    pub name: String,
    /// Whether the build fails without it.
    pub required: bool,
}

/// RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// What to run.
    pub command: CommandLine,
    /// `--mount` specs, parsed (field values not yet expanded).
    pub mounts: Vec<Mount>,
    /// The raw `--mount` values, for expansion at dispatch time.
    pub mount_specs: Vec<Word>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--security`.
    pub security: SecurityMode,
    /// `--device`.
    pub devices: Vec<Device>,
}

pub(crate) fn parse_run(req: &Request<'_>) -> Result<(Run, Vec<&'static str>), InstructionError> {
    let flags = req.flags(&[
        ("mount", FlagKind::Strings),
        ("network", FlagKind::String),
        ("security", FlagKind::String),
        ("device", FlagKind::Strings),
    ])?;
    let mut mounts = Vec::new();
    let mut mount_specs = Vec::new();
    for (spec, span) in flags.strings("mount") {
        let m = parse_mount(&spec, None).map_err(|k| InstructionError::new(k, span))?;
        mounts.push(m);
        mount_specs.push(Word::new(spec, span));
    }
    let network = match flags.string("network") {
        None => NetworkMode::Default,
        Some((v, span)) => match v.as_str() {
            "default" => NetworkMode::Default,
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            _ => return Err(InstructionError::new(ErrorKind::InvalidNetwork(v), span)),
        },
    };
    let security = match flags.string("security") {
        None => SecurityMode::Sandbox,
        Some((v, span)) => match v.as_str() {
            "sandbox" => SecurityMode::Sandbox,
            "insecure" => SecurityMode::Insecure,
            _ => return Err(InstructionError::new(ErrorKind::InvalidSecurity(v), span)),
        },
    };
    let devices = flags
        .strings("device")
        .into_iter()
        .map(|(v, span)| parse_device(&v).map_err(|k| InstructionError::new(k, span)))
        .collect::<Result<_, _>>()?;
    Ok((
        Run {
            command: req.command_line(),
            mounts,
            mount_specs,
            network,
            security,
            devices,
        },
        flags.used(),
    ))
}

/// `--device=name[,required[=bool]]` or `--device=name=<n>,...`.
fn parse_device(spec: &str) -> Result<Device, ErrorKind> {
    let mut name: Option<String> = None;
    let mut required = false;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .map_or((field, None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("required", None) => required = true,
            ("required", Some(v)) => {
                required = parse_go_bool(v).ok_or_else(|| ErrorKind::MountValue {
                    key: "required".into(),
                    value: v.into(),
                })?;
            }
            ("name", Some(v)) => set_device_name(&mut name, v)?,
            _ => set_device_name(&mut name, field)?,
        }
    }
    Ok(Device {
        name: name.unwrap_or_default(),
        required,
    })
}

fn set_device_name(name: &mut Option<String>, v: &str) -> Result<(), ErrorKind> {
    if let Some(old) = name {
        return Err(ErrorKind::DeviceNameSet(old.clone()));
    }
    *name = Some(v.to_owned());
    Ok(())
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let d = parse_device("vendor1.com/device=foo").unwrap();
        assert_eq!(
            (d.name.as_str(), d.required),
            ("vendor1.com/device=foo", false)
        );
        let d = parse_device("vendor1.com/device=foo,required").unwrap();
        assert!(d.required);
        let d = parse_device("name=vendor1.com/device=foo,required=true").unwrap();
        assert_eq!(
            (d.name.as_str(), d.required),
            ("vendor1.com/device=foo", true)
        );
        assert_eq!(
            parse_device("vendor1.com/device=foo,name=vendor2.com/device=bar")
                .unwrap_err()
                .to_string(),
            "device name already set to vendor1.com/device=foo"
        );
    }
}
