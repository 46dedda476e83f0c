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

/// What `struct statfs` says of a file system, in its own block size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatfsInfo {
    /// `f_type`: the file system's magic (TMPFS_MAGIC, EXT4_SUPER_MAGIC…).
    pub magic: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    /// Free blocks an unprivileged user may take.
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    /// The mount's `ST_*` flags.
    pub flags: u64,
}

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
    encode_statfs_info(&StatfsInfo {
        magic: u64::from(lx::TMPFS_MAGIC),
        bsize: BSIZE,
        blocks,
        bfree,
        bavail: bfree,
        files,
        ffree,
        fsid,
        flags,
    })
}

/// Encodes any file system's figures as `struct statfs`.
pub fn encode_statfs_info(i: &StatfsInfo) -> [u8; STATFS_SIZE] {
    let mut b = [0u8; STATFS_SIZE];
    put(&mut b, offset_of!(F, f_type), &i.magic.to_le_bytes());
    put(&mut b, offset_of!(F, f_bsize), &i.bsize.to_le_bytes());
    put(&mut b, offset_of!(F, f_blocks), &i.blocks.to_le_bytes());
    put(&mut b, offset_of!(F, f_bfree), &i.bfree.to_le_bytes());
    put(&mut b, offset_of!(F, f_bavail), &i.bavail.to_le_bytes());
    put(&mut b, offset_of!(F, f_files), &i.files.to_le_bytes());
    put(&mut b, offset_of!(F, f_ffree), &i.ffree.to_le_bytes());
    put(&mut b, offset_of!(F, f_fsid), &i.fsid.to_le_bytes());
    put(
        &mut b,
        offset_of!(F, f_namelen),
        &(crate::path::NAME_MAX as u64).to_le_bytes(),
    );
    put(&mut b, offset_of!(F, f_frsize), &i.bsize.to_le_bytes());
    put(&mut b, offset_of!(F, f_flags), &i.flags.to_le_bytes());
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
