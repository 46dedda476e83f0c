//! Credentials (credentials(7)): real, effective, saved and file-system
//! user and group ids and the supplementary groups, per thread as on
//! Linux (glibc makes set*id apply to every thread of a process).
//!
//! There are no capability sets: a thread has every capability while its
//! effective uid is 0 and none otherwise, and the file-system checks
//! (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN) follow its fsuid, which is
//! what Linux does for a process that never calls capset(2) and has no
//! SECBIT_* flags. A `Cred` is immutable once published: a change builds
//! a new one and swaps it in (`Process::set_cred`), so readers hold an
//! `Arc` without a lock.

use abi::{Errno, KResult};
use alloc::vec::Vec;

/// Linux's NGROUPS_MAX.
pub const NGROUPS_MAX: usize = 65536;

/// "Leave unchanged" in setres*id and set*reid.
const KEEP: u32 = u32::MAX;

/// One thread's ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

impl Cred {
    /// init's credentials: root.
    pub fn root() -> Cred {
        Cred::default()
    }

    /// CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SYS_*: effective root.
    pub fn privileged(&self) -> bool {
        self.euid == 0
    }

    /// CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN: file-system root.
    pub fn fs_privileged(&self) -> bool {
        self.fsuid == 0
    }

    /// Whether `gid` is the fsgid or a supplementary group (for chown's
    /// group and the setgid bit).
    pub fn in_group(&self, gid: u32) -> bool {
        self.fsgid == gid || self.groups.contains(&gid)
    }

    /// setuid(2): root sets all four ids; anyone may set the effective
    /// (and fs) uid to the real or saved one.
    pub fn setuid(&self, uid: u32) -> KResult<Cred> {
        let mut c = self.clone();
        if self.privileged() {
            (c.ruid, c.euid, c.suid, c.fsuid) = (uid, uid, uid, uid);
        } else if uid == self.ruid || uid == self.suid {
            (c.euid, c.fsuid) = (uid, uid);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(c)
    }

    /// setgid(2), as setuid for the group ids.
    pub fn setgid(&self, gid: u32) -> KResult<Cred> {
        let mut c = self.clone();
        if self.privileged() {
            (c.rgid, c.egid, c.sgid, c.fsgid) = (gid, gid, gid, gid);
        } else if gid == self.rgid || gid == self.sgid {
            (c.egid, c.fsgid) = (gid, gid);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(c)
    }

    /// setresuid(2): unprivileged, each new id must be one of the current
    /// real, effective or saved ids. The fsuid follows the effective uid.
    pub fn setresuid(&self, r: u32, e: u32, s: u32) -> KResult<Cred> {
        let ids = [self.ruid, self.euid, self.suid];
        if !self.privileged() && [r, e, s].iter().any(|&v| v != KEEP && !ids.contains(&v)) {
            return Err(Errno::EPERM);
        }
        let mut c = self.clone();
        keep_or(&mut c.ruid, r);
        keep_or(&mut c.euid, e);
        keep_or(&mut c.suid, s);
        c.fsuid = c.euid;
        Ok(c)
    }

    /// setresgid(2).
    pub fn setresgid(&self, r: u32, e: u32, s: u32) -> KResult<Cred> {
        let ids = [self.rgid, self.egid, self.sgid];
        if !self.privileged() && [r, e, s].iter().any(|&v| v != KEEP && !ids.contains(&v)) {
            return Err(Errno::EPERM);
        }
        let mut c = self.clone();
        keep_or(&mut c.rgid, r);
        keep_or(&mut c.egid, e);
        keep_or(&mut c.sgid, s);
        c.fsgid = c.egid;
        Ok(c)
    }

    /// setreuid(2): unprivileged, the real uid may become the effective
    /// one, the effective any of real/effective/saved. The saved uid
    /// becomes the new effective one when the real uid is set, or the
    /// effective one is set to something other than the old real uid.
    pub fn setreuid(&self, r: u32, e: u32) -> KResult<Cred> {
        let p = self.privileged();
        if r != KEEP && !p && r != self.ruid && r != self.euid {
            return Err(Errno::EPERM);
        }
        if e != KEEP && !p && ![self.ruid, self.euid, self.suid].contains(&e) {
            return Err(Errno::EPERM);
        }
        let mut c = self.clone();
        keep_or(&mut c.ruid, r);
        keep_or(&mut c.euid, e);
        if r != KEEP || (e != KEEP && e != self.ruid) {
            c.suid = c.euid;
        }
        c.fsuid = c.euid;
        Ok(c)
    }

    /// setregid(2), as setreuid.
    pub fn setregid(&self, r: u32, e: u32) -> KResult<Cred> {
        let p = self.privileged();
        if r != KEEP && !p && r != self.rgid && r != self.egid {
            return Err(Errno::EPERM);
        }
        if e != KEEP && !p && ![self.rgid, self.egid, self.sgid].contains(&e) {
            return Err(Errno::EPERM);
        }
        let mut c = self.clone();
        keep_or(&mut c.rgid, r);
        keep_or(&mut c.egid, e);
        if r != KEEP || (e != KEEP && e != self.rgid) {
            c.sgid = c.egid;
        }
        c.fsgid = c.egid;
        Ok(c)
    }

    /// setfsuid(2): allowed to any of real/effective/saved/fs uid, or by
    /// root; the old value is returned either way (the call's odd ABI).
    pub fn setfsuid(&self, uid: u32) -> Option<Cred> {
        let ok = self.privileged() || [self.ruid, self.euid, self.suid, self.fsuid].contains(&uid);
        ok.then(|| Cred {
            fsuid: uid,
            ..self.clone()
        })
    }

    /// setfsgid(2).
    pub fn setfsgid(&self, gid: u32) -> Option<Cred> {
        let ok = self.privileged() || [self.rgid, self.egid, self.sgid, self.fsgid].contains(&gid);
        ok.then(|| Cred {
            fsgid: gid,
            ..self.clone()
        })
    }

    /// setgroups(2): root only.
    pub fn setgroups(&self, groups: Vec<u32>) -> KResult<Cred> {
        if !self.privileged() {
            return Err(Errno::EPERM);
        }
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        Ok(Cred {
            groups,
            ..self.clone()
        })
    }

    /// The ids after execve of a file with `mode`, owned by `uid`/`gid`:
    /// set-user-ID and set-group-ID bits take effect (unless
    /// `no_new_privs`), and the saved ids become the effective ones.
    pub fn after_exec(&self, mode: u32, uid: u32, gid: u32, no_new_privs: bool) -> Cred {
        let mut c = self.clone();
        if !no_new_privs {
            if mode & 0o4000 != 0 {
                c.euid = uid;
            }
            // Linux: S_ISGID without group execute is mandatory locking,
            // not set-group-ID.
            if mode & 0o2010 == 0o2010 {
                c.egid = gid;
            }
        }
        c.suid = c.euid;
        c.fsuid = c.euid;
        c.sgid = c.egid;
        c.fsgid = c.egid;
        c
    }

    /// AT_SECURE: the program runs with ids its invoker did not have.
    pub fn secure_exec(&self) -> bool {
        self.euid != self.ruid || self.egid != self.rgid
    }

    /// kill(2)'s rule: root, or the sender's real or effective uid is the
    /// target's real or saved uid.
    pub fn may_signal(&self, target: &Cred) -> bool {
        self.privileged()
            || [self.ruid, self.euid].contains(&target.ruid)
            || [self.ruid, self.euid].contains(&target.suid)
    }
}

fn keep_or(id: &mut u32, v: u32) {
    if v != KEEP {
        *id = v;
    }
}
