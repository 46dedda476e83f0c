//! signalfd(2) and signalfd4(2): create a signalfd (fd -1) or replace
//! the mask of an existing one. The file is `fs::signalfd`.

use abi::{Errno, KResult};

use crate::fs::file::{self, Kind};
use crate::fs::signalfd::SignalFd;
use crate::proc::sched::current;
use crate::uaccess;

/// signalfd4(fd, mask, sizemask, flags): SFD_NONBLOCK and SFD_CLOEXEC
/// (O_NONBLOCK, O_CLOEXEC); EINVAL for other flags, a mask size other
/// than 8 or an fd that is not a signalfd; EFAULT for a bad mask.
pub fn signalfd4(fd: u64, mask: u64, sizemask: u64, flags: u64) -> KResult<u64> {
    let flags = flags as u32;
    if flags & !(file::O_CLOEXEC | file::O_NONBLOCK) != 0 || sizemask != 8 {
        return Err(Errno::EINVAL);
    }
    let set = uaccess::read_u64(mask)?;
    if fd as i32 == -1 {
        return super::epoll::install(Kind::SignalFd(SignalFd::new(set)), flags);
    }
    let f = current().files().lock().get(fd as i32)?;
    match &f.kind {
        // The flags apply only to a new descriptor (as Linux).
        Kind::SignalFd(s) => {
            s.set_mask(set);
            Ok(fd as i32 as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}
