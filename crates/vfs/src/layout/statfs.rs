//! `struct statfs` as statfs(2) and fstatfs(2) fill it on x86_64 (120 bytes).

use core::mem::{offset_of, size_of};

use super::put;
use crate::lx;
use crate::lx::statfs as F;
use crate::tmpfs::Usage;

/// `sizeof(struct statfs)` on x86_64.
pub const STATFS_SIZE: usize = size_of::<F>();
const _: () = assert!(STATFS_SIZE == 120);

/// Block size reported: one page, as tmpfs does.
const BSIZE: u64 = 4096;

/// Encodes a tmpfs's usage as `struct statfs` (f_type `TMPFS_MAGIC`),
/// with `fsid` the file system's id and `flags` the mount's `ST_*` flags.
pub fn encode_statfs(u: &Usage, fsid: u64, flags: u64) -> [u8; STATFS_SIZE] {
    // statfs fields are signed longs: clamp "unlimited" so df shows a large
    // number instead of a negative one.
    let clamp = |v: u64| v.min(i64::MAX as u64);
    let blocks = clamp(u.bytes_max / BSIZE);
    let used = u.bytes_used.div_ceil(BSIZE);
    let bfree = blocks.saturating_sub(used);
    let files = clamp(u.inodes_max);
    let ffree = files.saturating_sub(u.inodes_used);
    let mut b = [0u8; STATFS_SIZE];
    put(
        &mut b,
        offset_of!(F, f_type),
        &u64::from(lx::TMPFS_MAGIC).to_le_bytes(),
    );
    put(&mut b, offset_of!(F, f_bsize), &BSIZE.to_le_bytes());
    put(&mut b, offset_of!(F, f_blocks), &blocks.to_le_bytes());
    put(&mut b, offset_of!(F, f_bfree), &bfree.to_le_bytes());
    put(&mut b, offset_of!(F, f_bavail), &bfree.to_le_bytes());
    put(&mut b, offset_of!(F, f_files), &files.to_le_bytes());
    put(&mut b, offset_of!(F, f_ffree), &ffree.to_le_bytes());
    put(&mut b, offset_of!(F, f_fsid), &fsid.to_le_bytes());
    put(
        &mut b,
        offset_of!(F, f_namelen),
        &(crate::path::NAME_MAX as u64).to_le_bytes(),
    );
    put(&mut b, offset_of!(F, f_frsize), &BSIZE.to_le_bytes());
    put(&mut b, offset_of!(F, f_flags), &flags.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let u = Usage {
            bytes_used: 4097,
            bytes_max: 1 << 20,
            inodes_used: 3,
            inodes_max: 100,
        };
        let b = encode_statfs(&u, 9, 0);
        let at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(at(0), 0x0102_1994);
        assert_eq!(at(8), 4096);
        assert_eq!((at(16), at(24), at(32)), (256, 254, 254));
        assert_eq!((at(40), at(48)), (100, 97));
        assert_eq!(at(56), 9);
        assert_eq!(at(64), 255);
    }
}
