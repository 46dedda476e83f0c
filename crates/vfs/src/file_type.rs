//! The kind of an inode, as encoded in the `S_IFMT` bits of `st_mode` and in
//! the `d_type` of a directory entry (see inode(7) and getdents64(2)).

use crate::lx;

/// What an inode is. Derived from, and stored as, the `S_IFMT` mode bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// `S_IFREG`
    Regular,
    /// `S_IFDIR`
    Directory,
    /// `S_IFLNK`
    Symlink,
    /// `S_IFCHR`
    CharDevice,
    /// `S_IFBLK`
    BlockDevice,
    /// `S_IFIFO`
    Fifo,
    /// `S_IFSOCK`
    Socket,
}

impl FileType {
    /// The type encoded in `mode`, or `None` for an `S_IFMT` value Linux does
    /// not define.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & lx::S_IFMT {
            lx::S_IFREG => FileType::Regular,
            lx::S_IFDIR => FileType::Directory,
            lx::S_IFLNK => FileType::Symlink,
            lx::S_IFCHR => FileType::CharDevice,
            lx::S_IFBLK => FileType::BlockDevice,
            lx::S_IFIFO => FileType::Fifo,
            lx::S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits for this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => lx::S_IFREG,
            FileType::Directory => lx::S_IFDIR,
            FileType::Symlink => lx::S_IFLNK,
            FileType::CharDevice => lx::S_IFCHR,
            FileType::BlockDevice => lx::S_IFBLK,
            FileType::Fifo => lx::S_IFIFO,
            FileType::Socket => lx::S_IFSOCK,
        }
    }

    /// The `d_type` value getdents64(2) reports (`DT_REG`, `DT_DIR`, …).
    pub fn dirent_type(self) -> u8 {
        (match self {
            FileType::Regular => lx::DT_REG,
            FileType::Directory => lx::DT_DIR,
            FileType::Symlink => lx::DT_LNK,
            FileType::CharDevice => lx::DT_CHR,
            FileType::BlockDevice => lx::DT_BLK,
            FileType::Fifo => lx::DT_FIFO,
            FileType::Socket => lx::DT_SOCK,
        }) as u8
    }

    /// Whether inodes of this type carry an `rdev` (mknod(2) devices).
    pub fn is_device(self) -> bool {
        matches!(self, FileType::CharDevice | FileType::BlockDevice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_linux_values() {
        for t in [
            FileType::Regular,
            FileType::Directory,
            FileType::Symlink,
            FileType::CharDevice,
            FileType::BlockDevice,
            FileType::Fifo,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(t.mode_bits() | 0o644), Some(t));
            // d_type is the S_IFMT value shifted down by 12, by definition.
            assert_eq!(u32::from(t.dirent_type()), t.mode_bits() >> 12);
        }
        assert_eq!(FileType::from_mode(0o644), None);
        assert_eq!(FileType::Directory.mode_bits(), 0o040000);
    }
}
