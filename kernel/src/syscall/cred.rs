//! The user- and group-id calls (credentials(7)); the rules themselves
//! are in `proc::cred`.

use abi::{Errno, KResult};
use alloc::vec::Vec;

use crate::proc::cred::{Cred, NGROUPS_MAX};
use crate::proc::sched::current;
use crate::uaccess;

/// Applies `f` to the caller's credentials and publishes the result.
fn change(f: impl FnOnce(&Cred) -> KResult<Cred>) -> KResult<u64> {
    let me = current();
    let new = f(&me.cred())?;
    me.set_cred(new);
    Ok(0)
}

/// getuid, geteuid, getgid, getegid.
pub fn getid(which: fn(&Cred) -> u32) -> KResult<u64> {
    Ok(which(&current().cred()) as u64)
}

pub fn setuid(uid: u64) -> KResult<u64> {
    change(|c| c.setuid(uid as u32))
}

pub fn setgid(gid: u64) -> KResult<u64> {
    change(|c| c.setgid(gid as u32))
}

pub fn setreuid(r: u64, e: u64) -> KResult<u64> {
    change(|c| c.setreuid(r as u32, e as u32))
}

pub fn setregid(r: u64, e: u64) -> KResult<u64> {
    change(|c| c.setregid(r as u32, e as u32))
}

pub fn setresuid(r: u64, e: u64, s: u64) -> KResult<u64> {
    change(|c| c.setresuid(r as u32, e as u32, s as u32))
}

pub fn setresgid(r: u64, e: u64, s: u64) -> KResult<u64> {
    change(|c| c.setresgid(r as u32, e as u32, s as u32))
}

/// setfsuid(2)/setfsgid(2) return the previous value, changed or not.
pub fn setfsid(id: u64, user: bool) -> KResult<u64> {
    let me = current();
    let c = me.cred();
    let (old, new) = if user {
        (c.fsuid, c.setfsuid(id as u32))
    } else {
        (c.fsgid, c.setfsgid(id as u32))
    };
    if let Some(n) = new {
        me.set_cred(n);
    }
    Ok(old as u64)
}

/// getresuid(2)/getresgid(2).
pub fn getresid(r: u64, e: u64, s: u64, user: bool) -> KResult<u64> {
    let c = current().cred();
    let ids = if user {
        [c.ruid, c.euid, c.suid]
    } else {
        [c.rgid, c.egid, c.sgid]
    };
    for (p, v) in [r, e, s].into_iter().zip(ids) {
        uaccess::write_u32(p, v)?;
    }
    Ok(0)
}

/// getgroups(2): size 0 asks how many; a smaller buffer is EINVAL.
pub fn getgroups(size: u64, list: u64) -> KResult<u64> {
    let c = current().cred();
    let n = c.groups.len();
    if size as i32 == 0 {
        return Ok(n as u64);
    }
    if (size as i32) < 0 || (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = c.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    uaccess::copy_out(list, &bytes)?;
    Ok(n as u64)
}

/// setgroups(2).
pub fn setgroups(size: u64, list: u64) -> KResult<u64> {
    if !current().cred().privileged() {
        return Err(Errno::EPERM);
    }
    let n = usize::try_from(size as i32).map_err(|_| Errno::EINVAL)?;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let bytes = uaccess::read_vec(list, n * 4)?;
    let mut groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // Linux keeps them sorted (groups_sort) and reports them so.
    groups.sort_unstable();
    change(|c| c.setgroups(groups))
}
