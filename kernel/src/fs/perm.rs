//! Permission checks of the file-system calls (path_resolution(7),
//! "Permissions"; chmod(2), chown(2), unlink(2) on sticky directories)
//! for the calling thread's file-system ids. The file systems do not
//! check: the calls here decide when a check applies.

use abi::{Errno, KResult};
use alloc::sync::Arc;
use vfs::access::{Caller, MAY_EXEC, MAY_READ, MAY_WRITE};
use vfs::Stat;

use crate::proc::cred::Cred;

/// The credentials file-system calls run with: the current thread's, or
/// root's for the kernel itself (boot, before any process).
pub fn me() -> Arc<Cred> {
    match crate::proc::sched::try_current() {
        Some(p) => p.cred(),
        None => Arc::new(Cred::root()),
    }
}

/// `c` as the file systems see a caller: fsuid, fsgid, groups.
pub fn caller(c: &Cred) -> Caller<'_> {
    Caller {
        uid: c.fsuid,
        gid: c.fsgid,
        groups: &c.groups,
    }
}

/// `EACCES` unless `c` may access `st` for every right in `want`.
pub fn check(c: &Cred, st: &Stat, want: u32) -> KResult<()> {
    if caller(c).may(st.mode, st.uid, st.gid, want) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// The rights open(2) with `flags` needs on an existing file: read and/or
/// write by the access mode, write for O_TRUNC, none for O_PATH.
pub fn open_rights(flags: u32) -> u32 {
    use super::file::{O_ACCMODE, O_PATH, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
    if flags & O_PATH != 0 {
        return 0;
    }
    let mut want = match flags & O_ACCMODE {
        O_RDONLY => MAY_READ,
        O_WRONLY => MAY_WRITE,
        O_RDWR => MAY_READ | MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
    }
    want
}

/// Creating or removing a name in directory `dir` needs write and search.
pub fn may_change_dir(c: &Cred, dir: &Stat) -> KResult<()> {
    check(c, dir, MAY_WRITE | MAY_EXEC)
}

/// Removing (or renaming away, or over) `victim` in `dir`: write and
/// search on `dir`, and in a sticky directory (/tmp) only the owner of
/// the file or of the directory, or root (`EPERM`).
pub fn may_delete(c: &Cred, dir: &Stat, victim: &Stat) -> KResult<()> {
    may_change_dir(c, dir)?;
    let sticky = dir.mode & 0o1000 != 0;
    if sticky && !c.fs_privileged() && c.fsuid != victim.uid && c.fsuid != dir.uid {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// CAP_FOWNER's rule (chmod, utimes with explicit times, setting xattrs
/// of others): the owner or root, `EPERM` otherwise.
pub fn owner(c: &Cred, st: &Stat) -> KResult<()> {
    if c.fs_privileged() || c.fsuid == st.uid {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The mode chmod(2) gives to `st` for `c`: the owner or root only; an
/// unprivileged owner outside the file's group cannot set set-group-ID
/// (Linux clears it silently).
pub fn chmod_mode(c: &Cred, st: &Stat, mode: u32) -> KResult<u32> {
    owner(c, st)?;
    let mut mode = mode & 0o7777;
    if !c.fs_privileged() && !c.in_group(st.gid) {
        mode &= !0o2000;
    }
    Ok(mode)
}

/// chown(2)'s rule: root may give anything; the owner may only change
/// the group, to one of its own (`None` = leave unchanged).
pub fn may_chown(c: &Cred, st: &Stat, uid: Option<u32>, gid: Option<u32>) -> KResult<()> {
    if c.fs_privileged() {
        return Ok(());
    }
    let uid_ok = uid.is_none_or(|u| u == st.uid);
    let gid_ok = gid.is_none_or(|g| g == st.gid || (c.fsuid == st.uid && c.in_group(g)));
    if uid_ok && gid_ok && (c.fsuid == st.uid || (uid.is_none() && gid.is_none())) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}
