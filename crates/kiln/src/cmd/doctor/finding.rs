//! One result of one check, and the fix in the form that fits where kiln runs.

use super::host::Where;

/// How bad a finding is. `Error` means a build cannot work here and makes doctor exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Fine.
    Ok,
    /// Worth knowing, changes nothing (cgroup version, a probe not tried).
    Info,
    /// Builds work, but slower or with less (the copying snapshotter, one mapped id).
    Warn,
    /// Builds cannot work until this is fixed.
    Error,
}

impl Status {
    /// The word the text output shows.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warn => "warning",
            Self::Error => "error",
        }
    }
}

/// The one thing that fixes a problem, in each of the three places kiln runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fix {
    /// A command to run on the machine.
    pub host: Option<String>,
    /// A `docker run` flag (or, for a kernel setting, the command on the Docker host).
    pub docker: Option<String>,
    /// A field of the pod spec (or the command on the node).
    pub kubernetes: Option<String>,
}

impl Fix {
    /// The same fix everywhere (a command on the machine, or on the host of the container).
    pub(crate) fn everywhere(command: impl Into<String>) -> Self {
        let command = command.into();
        Self {
            host: Some(command.clone()),
            docker: Some(format!("on the Docker host: {command}")),
            kubernetes: Some(format!("on the node: {command}")),
        }
    }

    /// A command inside the machine or the image (a package, a file of the image).
    pub(crate) fn inside(host: impl Into<String>, image: impl Into<String>) -> Self {
        let image = image.into();
        Self {
            host: Some(host.into()),
            docker: Some(image.clone()),
            kubernetes: Some(image),
        }
    }

    /// The form for `place` (falling back to the host's command).
    pub(crate) fn for_place(&self, place: Where) -> Option<&str> {
        match place {
            Where::Host => self.host.as_deref(),
            Where::Docker => self.docker.as_deref().or(self.host.as_deref()),
            Where::Kubernetes => self.kubernetes.as_deref().or(self.host.as_deref()),
        }
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// A stable name for the check (`userns`, `subuid`, `overlay`...), the JSON key.
    pub check: &'static str,
    /// How bad it is.
    pub status: Status,
    /// What was found, in a sentence.
    pub message: String,
    /// What fixes it, when something does.
    pub fix: Option<Fix>,
}

impl Finding {
    pub(crate) fn new(check: &'static str, status: Status, message: impl Into<String>) -> Self {
        Self {
            check,
            status,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, message)
    }

    pub(crate) fn info(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Info, message)
    }

    pub(crate) fn warn(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, message)
    }

    pub(crate) fn error(check: &'static str, message: impl Into<String>) -> Self {
        Self::new(check, Status::Error, message)
    }

    #[must_use]
    pub(crate) fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}
