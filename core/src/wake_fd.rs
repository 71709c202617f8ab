//! A file descriptor that an event loop can watch for "something is done":
//! the form of Done that C event loops (`poll`, `epoll`, libuv) and
//! bindings' loops (asyncio's `add_reader`) need. Made readable from any
//! thread, without blocking and without touching the loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An eventfd on Linux, a non-blocking pipe elsewhere; close-on-exec. The
/// `pipe-wake` feature uses the pipe on Linux too, so that the path other
/// systems take is tested where the tests run.
#[derive(Debug)]
pub struct WakeFd {
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, which is both ends.
    write: Option<OwnedFd>,
}

impl WakeFd {
    /// A new descriptor, not yet readable.
    pub fn new() -> io::Result<WakeFd> {
        #[cfg(all(target_os = "linux", not(feature = "pipe-wake")))]
        return open_eventfd();
        #[cfg(not(all(target_os = "linux", not(feature = "pipe-wake"))))]
        return open_pipe();
    }

    /// The descriptor to watch for readability. Owned by this `WakeFd`.
    pub fn raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes it readable (if it is not already). Any thread; never blocks.
    pub fn signal(&self) {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor this value
        // keeps open. The descriptor is non-blocking; EAGAIN means it is
        // already readable, which is all this is for.
        unsafe { libc::write(fd, std::ptr::from_ref(&one).cast(), 8) };
    }

    /// Consumes the readiness, so that the next `signal` is seen anew.
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live buffer from a non-blocking descriptor this
        // value keeps open.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } == buf.len() as isize {}
    }
}

#[cfg(target_os = "linux")]
#[cfg_attr(feature = "pipe-wake", allow(dead_code))]
fn open_eventfd() -> io::Result<WakeFd> {
    // SAFETY: plain system call with valid flags.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(WakeFd {
        // SAFETY: a descriptor just made, owned by nobody else.
        read: unsafe { OwnedFd::from_raw_fd(fd) },
        write: None,
    })
}

#[cfg_attr(all(target_os = "linux", not(feature = "pipe-wake")), allow(dead_code))]
fn open_pipe() -> io::Result<WakeFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: descriptors just made, owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&read, &write] {
        // SAFETY: fcntl on descriptors we own, with valid flags.
        unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(WakeFd {
        read,
        write: Some(write),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: &WakeFd) -> bool {
        let mut p = libc::pollfd {
            fd: fd.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    fn is_fifo(fd: &WakeFd) -> bool {
        // SAFETY: fstat into a zeroed stat on a descriptor `fd` keeps open.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd.raw_fd(), &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no fstat on these descriptors")]
    fn new_takes_the_configured_path() {
        let fd = WakeFd::new().unwrap();
        let want_pipe = !cfg!(target_os = "linux") || cfg!(feature = "pipe-wake");
        assert_eq!(is_fifo(&fd), want_pipe);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no poll()")]
    fn both_paths_signal_and_clear() {
        signal_makes_readable_and_clear_resets(open_pipe().unwrap());
        #[cfg(target_os = "linux")]
        signal_makes_readable_and_clear_resets(open_eventfd().unwrap());
    }

    fn signal_makes_readable_and_clear_resets(fd: WakeFd) {
        assert!(!readable(&fd));
        fd.signal();
        fd.signal();
        assert!(readable(&fd));
        fd.clear();
        assert!(!readable(&fd));
        std::thread::scope(|s| {
            s.spawn(|| fd.signal());
        });
        assert!(readable(&fd));
    }
}
