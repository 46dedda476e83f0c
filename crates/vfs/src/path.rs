//! Path-name limits and splitting (path_resolution(7)).
//!
//! Paths are byte strings without the terminating NUL, as the kernel copies
//! them from user space; Linux imposes no encoding.

use abi::{Errno, KResult};

/// Longest component, `NAME_MAX` (limits.h).
pub const NAME_MAX: usize = crate::lx::NAME_MAX as usize;
/// `PATH_MAX` counts the terminating NUL, so a path may hold one byte less.
pub const PATH_MAX: usize = crate::lx::PATH_MAX as usize;
/// How many symlinks one lookup may follow before `ELOOP`, as in Linux
/// (`MAXSYMLINKS`, path_resolution(7)).
pub const MAX_SYMLINKS: u32 = 40;

/// Rejects paths Linux would: empty (`ENOENT`) or not shorter than
/// `PATH_MAX` (`ENAMETOOLONG`).
pub fn check_path(path: &[u8]) -> KResult<()> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Rejects a component longer than `NAME_MAX`.
pub fn check_name(name: &[u8]) -> KResult<()> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else {
        Ok(())
    }
}

/// Whether `name` is `.` or `..`, which name no new entry.
pub fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Splits a path into the part naming the parent directory and the last
/// component, ignoring trailing slashes: `a/b//` → (`a`, `b`), `b` → (``,
/// `b`), `/b` → (`/`, `b`). A path of only slashes has last component `.`:
/// it names the root itself, which has no parent entry.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let end = path.iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
    if end == 0 {
        return (b"/", b".");
    }
    let trimmed = &path[..end];
    match trimmed.iter().rposition(|&c| c == b'/') {
        None => (b"", trimmed),
        Some(i) => {
            let dir_end = trimmed[..i]
                .iter()
                .rposition(|&c| c != b'/')
                .map_or(0, |j| j + 1);
            let dir = if dir_end == 0 {
                &b"/"[..]
            } else {
                &trimmed[..dir_end]
            };
            (dir, &trimmed[i + 1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_cases() {
        assert_eq!(split_last(b"a/b//"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"b"), (&b""[..], &b"b"[..]));
        assert_eq!(split_last(b"/b"), (&b"/"[..], &b"b"[..]));
        assert_eq!(split_last(b"//b/"), (&b"/"[..], &b"b"[..]));
        assert_eq!(split_last(b"///"), (&b"/"[..], &b"."[..]));
        assert_eq!(split_last(b"a//b"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"x/y/.."), (&b"x/y"[..], &b".."[..]));
    }

    #[test]
    fn limits() {
        assert_eq!(check_path(b""), Err(Errno::ENOENT));
        assert!(check_path(&[b'a'; PATH_MAX - 1]).is_ok());
        assert_eq!(check_path(&[b'a'; PATH_MAX]), Err(Errno::ENAMETOOLONG));
        assert!(check_name(&[b'a'; 255]).is_ok());
        assert_eq!(check_name(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
    }
}
