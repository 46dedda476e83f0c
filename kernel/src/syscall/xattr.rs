//! Extended attributes (setxattr(2) and its eleven siblings): the tmpfs
//! and /proc of RSE OS store none, so every file answers as on a Linux
//! file system without xattr support: get, set and remove fail with
//! EOPNOTSUPP, list returns an empty list. The name is still resolved
//! first (ENOENT, ENOTDIR, EBADF, EFAULT as Linux gives them). GNU ls -l
//! asks for `security.selinux` and `system.posix_acl_access` on every
//! file and takes EOPNOTSUPP as "none"; it reported ENOSYS as an error.

use abi::{Errno, KResult};

use super::fs::{check_fd, lookup_user_path};

/// What the call does with the attributes.
#[derive(Clone, Copy)]
pub enum Op {
    Get,
    Set,
    Remove,
    List,
}

/// Which file: a path (following a last symlink or not), or a descriptor.
#[derive(Clone, Copy)]
pub enum Target {
    Path { path: u64, follow: bool },
    Fd(u64),
}

/// One of the twelve calls: `name` is the attribute name (unused by List).
pub fn call(op: Op, target: Target, name: u64) -> KResult<u64> {
    match target {
        Target::Path { path, follow } => {
            lookup_user_path(path, follow)?;
        }
        Target::Fd(fd) => check_fd(fd)?,
    }
    if !matches!(op, Op::List) {
        // Linux reads the name first: EFAULT for a bad pointer, ERANGE
        // for an empty or over-long one.
        let n = crate::uaccess::read_cstr(name, 256)?;
        if n.is_empty() || n.len() > 255 {
            return Err(Errno::ERANGE);
        }
    }
    match op {
        Op::List => Ok(0),
        Op::Get | Op::Set | Op::Remove => Err(Errno::EOPNOTSUPP),
    }
}
