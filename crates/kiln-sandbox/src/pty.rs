//! A pseudo-terminal for interactive steps (`kiln run -it`): the step gets the slave side as
//! its stdin, stdout, stderr and controlling terminal; the caller copies between the master
//! side and its own terminal, which it puts in raw mode meanwhile.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::termios::{OptionalActions, Termios};

/// Both ends of a new pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The caller's end.
    pub master: OwnedFd,
    /// The step's end (its terminal).
    pub slave: OwnedFd,
}

impl Pty {
    /// Opens a pseudo-terminal the size of `like` (the caller's terminal) when given.
    pub fn open(like: Option<BorrowedFd<'_>>) -> io::Result<Self> {
        use rustix::pty::OpenptFlags;
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let slave =
            rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
        if let Some(fd) = like
            && let Ok(size) = rustix::termios::tcgetwinsize(fd)
        {
            rustix::termios::tcsetwinsize(&slave, size)?;
        }
        Ok(Self { master, slave })
    }

    /// Sets the terminal's size in rows and columns.
    pub fn set_size(&self, rows: u16, cols: u16) -> io::Result<()> {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        Ok(rustix::termios::tcsetwinsize(&self.master, size)?)
    }
}

/// Restores a terminal's settings when dropped.
#[derive(Debug)]
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    /// Puts the terminal `fd` in raw mode (no echo, no line editing, no signals from keys:
    /// Ctrl-C reaches the step as a byte) until the guard is dropped.
    pub fn enter(fd: BorrowedFd<'a>) -> io::Result<Self> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, OptionalActions::Now, &raw)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.fd.as_fd(), OptionalActions::Now, &self.saved);
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    rustix::termios::isatty(fd)
}
