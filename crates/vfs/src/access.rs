//! Permission checks as Linux performs them for a caller's file-system ids
//! (path_resolution(7), "Permissions"). The tmpfs itself does not check:
//! the kernel decides when a check applies (search permission during walks,
//! open modes, `access(2)`), and calls this with the caller's credentials.

use crate::Stat;

/// Read permission (`R_OK`).
pub const MAY_READ: u32 = crate::lx::R_OK;
/// Write permission (`W_OK`).
pub const MAY_WRITE: u32 = crate::lx::W_OK;
/// Execute / search permission (`X_OK`).
pub const MAY_EXEC: u32 = crate::lx::X_OK;

/// Whether a caller with `uid`, primary `gid` and supplementary `groups` may
/// access the file `st` for every right in `want` (a mask of `MAY_*`).
///
/// Root (uid 0, i.e. `CAP_DAC_OVERRIDE`) may read and write anything, and
/// execute a non-directory only if some execute bit is set, as on Linux.
pub fn may_access(st: &Stat, uid: u32, gid: u32, groups: &[u32], want: u32) -> bool {
    Caller { uid, gid, groups }.may(st.mode, st.uid, st.gid, want)
}

/// Who performs a file-system operation: the file-system user and group
/// ids and the supplementary groups.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
}

impl Caller<'_> {
    /// Whether this caller may access a file of `mode` owned by
    /// `owner`/`group` for every right in `want` ([`may_access`]).
    pub fn may(&self, mode: u32, owner: u32, group: u32, want: u32) -> bool {
        let want = want & 0o7;
        if self.uid == 0 {
            let is_dir = crate::FileType::from_mode(mode) == Some(crate::FileType::Directory);
            return want & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0;
        }
        // Only the most specific class applies: an owner denied by the owner
        // bits is denied even if "other" would allow.
        let bits = if self.uid == owner {
            (mode >> 6) & 0o7
        } else if self.gid == group || self.groups.contains(&group) {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        bits & want == want
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat {
            mode,
            uid,
            gid,
            ..Stat::default()
        }
    }

    #[test]
    fn classes() {
        let f = st(0o100604, 10, 20);
        assert!(may_access(&f, 10, 99, &[], MAY_READ | MAY_WRITE));
        assert!(!may_access(&f, 11, 20, &[], MAY_READ));
        assert!(!may_access(&f, 11, 99, &[20], MAY_READ));
        assert!(may_access(&f, 11, 99, &[], MAY_READ));
        assert!(!may_access(&st(0o100077, 10, 20), 10, 20, &[], MAY_READ));
    }

    #[test]
    fn root() {
        assert!(may_access(
            &st(0o100000, 10, 20),
            0,
            0,
            &[],
            MAY_READ | MAY_WRITE
        ));
        assert!(!may_access(&st(0o100644, 10, 20), 0, 0, &[], MAY_EXEC));
        assert!(may_access(&st(0o100001, 10, 20), 0, 0, &[], MAY_EXEC));
        assert!(may_access(&st(0o040000, 10, 20), 0, 0, &[], MAY_EXEC));
    }
}
