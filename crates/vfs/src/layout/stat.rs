//! `struct stat` as stat(2), fstat(2), lstat(2) and newfstatat(2) fill it
//! on x86_64 (144 bytes).

use core::mem::{offset_of, size_of};

use super::put;
use crate::lx::stat as S;
use crate::Stat;

/// `sizeof(struct stat)` on x86_64.
pub const STAT_SIZE: usize = size_of::<S>();
const _: () = assert!(STAT_SIZE == 144);

/// Encodes `st` as the bytes of a Linux x86_64 `struct stat`.
pub fn encode_stat(st: &Stat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    put(&mut b, offset_of!(S, st_dev), &st.dev.to_le_bytes());
    put(&mut b, offset_of!(S, st_ino), &st.ino.to_le_bytes());
    put(&mut b, offset_of!(S, st_nlink), &st.nlink.to_le_bytes());
    put(&mut b, offset_of!(S, st_mode), &st.mode.to_le_bytes());
    put(&mut b, offset_of!(S, st_uid), &st.uid.to_le_bytes());
    put(&mut b, offset_of!(S, st_gid), &st.gid.to_le_bytes());
    put(&mut b, offset_of!(S, st_rdev), &st.rdev.to_le_bytes());
    put(&mut b, offset_of!(S, st_size), &st.size.to_le_bytes());
    put(&mut b, offset_of!(S, st_blksize), &st.blksize.to_le_bytes());
    put(&mut b, offset_of!(S, st_blocks), &st.blocks.to_le_bytes());
    put(&mut b, offset_of!(S, st_atime), &st.atime.sec.to_le_bytes());
    put(
        &mut b,
        offset_of!(S, st_atime_nsec),
        &u64::from(st.atime.nsec).to_le_bytes(),
    );
    put(&mut b, offset_of!(S, st_mtime), &st.mtime.sec.to_le_bytes());
    put(
        &mut b,
        offset_of!(S, st_mtime_nsec),
        &u64::from(st.mtime.nsec).to_le_bytes(),
    );
    put(&mut b, offset_of!(S, st_ctime), &st.ctime.sec.to_le_bytes());
    put(
        &mut b,
        offset_of!(S, st_ctime_nsec),
        &u64::from(st.ctime.nsec).to_le_bytes(),
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timespec;

    #[test]
    fn offsets_match_the_x86_64_abi() {
        let st = Stat {
            dev: 0x11,
            ino: 0x22,
            nlink: 3,
            mode: 0o100644,
            uid: 1000,
            gid: 100,
            rdev: 0x103,
            size: 12345,
            blksize: 4096,
            blocks: 32,
            atime: Timespec { sec: 1, nsec: 2 },
            mtime: Timespec { sec: 3, nsec: 4 },
            ctime: Timespec { sec: 5, nsec: 6 },
        };
        let b = encode_stat(&st);
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        // Offsets from glibc's sysdeps/unix/sysv/linux/x86/bits/struct_stat.h.
        assert_eq!(u64_at(0), 0x11);
        assert_eq!(u64_at(8), 0x22);
        assert_eq!(u64_at(16), 3);
        assert_eq!(u32_at(24), 0o100644);
        assert_eq!(u32_at(28), 1000);
        assert_eq!(u32_at(32), 100);
        assert_eq!(u64_at(40), 0x103);
        assert_eq!(u64_at(48), 12345);
        assert_eq!(u64_at(56), 4096);
        assert_eq!(u64_at(64), 32);
        assert_eq!((u64_at(72), u64_at(80)), (1, 2));
        assert_eq!((u64_at(88), u64_at(96)), (3, 4));
        assert_eq!((u64_at(104), u64_at(112)), (5, 6));
        assert!(b[120..].iter().all(|&x| x == 0));
    }
}
